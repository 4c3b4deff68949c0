"""Images: templates from the data, the network and the user; refinement; the image
pipeline; decodability evidence; Casper's challenge 1 end to end on a subset.

Tests that read data files skip only when SYNTH_DATA_DIR is unset; when it is
set, a missing file fails them.  (A wrong-shaped CNN state dict is covered for the
loader by tests/test_oracles.py::test_wrong_shapes_give_clear_errors, and for the
command line here.)
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from torch import nn

from dsl.images import Template, image_features
from dsl.program import Var, apply, const
from dsl.types import IMAGE
from oracles.templates import (aligned_mean, filter_templates, gradient_templates,
                               network_aligned_exemplars, network_templates)
from oracles.torch_oracle import TorchOracle
from synth.cli import main
from synth.evidence import decodability, default_layers, program_atoms, program_features
from synth.image_search import (atoms_within, contrast_templates, cut_front, data_templates,
                                load_domain_images, prefer_simpler, recover_image_program,
                                refine_template, screen_templates, search_features,
                                search_split, signed_template, with_signed)
from synth.search import Synthesizer
from tests.helpers import data_file

IMAGE_VAR = Var("image", IMAGE)






# ---------------------------------------------------------------------------
# A synthetic task: blobs on a 12x12 grid, labelled by a band on the L1
# distance to a stroke template -- the shape of label the pipeline targets.

def stroke(h: int = 12, w: int = 12) -> np.ndarray:
    t = np.zeros((h, w))
    t[2:10, 5:7] = 1.0
    return t


def blob_images(n: int, seed: int = 0, h: int = 12, w: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros((n, h, w))
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            r0, c0 = rng.integers(0, h - 3), rng.integers(0, w - 3)
            out[i, r0:r0 + rng.integers(2, 8), c0:c0 + rng.integers(1, 4)] = 1.0
    return np.clip(out + 0.05 * rng.random((n, h, w)), 0, 1)


def band_labels(images: np.ndarray, template: np.ndarray) -> np.ndarray:
    score = (images * (2 * template - 1)).sum(axis=(1, 2))
    lo, hi = np.quantile(score, [0.3, 0.7])
    return ((score < lo) | (score > hi)).astype(np.int64)


class TinyCNN(nn.Module):
    """A small CNN over (N, 1, 12, 12) with named steps (hook points)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(4 * 5 * 5, 16)
        self.relu2 = nn.ReLU()
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        for module in self.children():
            x = module(x)
        return x


def tiny_oracle(seed: int = 0) -> TorchOracle:
    torch.manual_seed(seed)

    def encode(env):
        return torch.as_tensor(np.asarray(env["image"]), dtype=torch.float32).unsqueeze(1)

    return TorchOracle(TinyCNN(), encode, ("image",))


# ---------------------------------------------------------------------------
# Templates.

def test_signed_template_turns_ink_into_plus_one_and_background_into_minus_one():
    t = Template.from_array(stroke(), "stroke", source="user")
    s = signed_template(t)
    assert s.name == "stroke_signed" and "signed" in s.source and "user" in s.source
    np.testing.assert_array_equal(s.array, 2 * stroke() - 1)
    both = with_signed([t, Template.from_array(stroke() - 0.5, "centred")])
    assert [b.name for b in both] == ["stroke", "stroke_signed", "centred"]


def test_class_contrasts_weigh_one_class_against_another():
    images = blob_images(30)
    classes = np.arange(30) % 3
    means = [Template.from_array(images[classes == c].mean(axis=0), f"mean_{c}",
                                 source=f"class-mean:{c}") for c in range(3)]
    contrasts = contrast_templates(means)
    assert [t.name for t in contrasts] == ["mean_0_minus_1", "mean_0_minus_2", "mean_1_minus_2"]
    assert contrasts[1].source == "class-mean:0 - class-mean:2"
    np.testing.assert_allclose(contrasts[2].array, means[1].array - means[2].array, atol=1e-3)
    names = [t.name for t in data_templates(images, classes, pca=1)]
    assert {"mean_0", "mean_0_minus_2", "pca_0"} <= set(names)


def test_search_features_read_region_ink_at_two_scales():
    names = [str(f) for f in search_features([])]
    assert "ink_in_row_band(image, 3)" in names and "ink_in_col_band_2(image, 1)" in names
    assert "ink_in_cell_2x2(image, 1, 0)" in names and len(names) == len(set(names))
    image = blob_images(1)
    lower = next(f for f in search_features([]) if str(f) == "ink_in_row_band_2(image, 1)")
    assert lower.evaluate({"image": image})[0] == pytest.approx(image[0, 6:].sum())
    assert [str(f) for f in search_features([], coarse_grid=None)] == \
        [str(f) for f in image_features([])]


def test_screening_ranks_the_planted_template_first():
    images = blob_images(600)
    z = band_labels(images, stroke())
    planted = Template.from_array(stroke(), "planted")
    noise = [Template.from_array(np.random.default_rng(i).random((12, 12)), f"noise_{i}")
             for i in range(4)]
    screened = screen_templates(with_signed([*noise, planted]), images, z)
    assert screened[0].template.name == "planted_signed"
    assert screened[0].kind == "out" and screened[0].fidelity > 0.99


def test_refinement_improves_a_rough_template_and_keeps_the_shape():
    images = blob_images(1500, seed=1)
    z = band_labels(images, stroke())
    rough = stroke()
    rough[2:6, 5:7] = 0.0  # half the stroke missing
    rough = Template.from_array(2 * rough - 1, "rough", source="test:rough")
    before = screen_templates([rough], images[:1000], z[:1000])[0].fidelity
    refined = refine_template(rough, images[:1000], z[:1000], iters=100)
    assert refined.name == "rough_refined" and refined.source.startswith("refined(test:rough)")
    assert refined.shape == (12, 12) and np.abs(refined.array).max() == 1.0
    after_fit = screen_templates([refined], images[:1000], z[:1000])[0].fidelity
    after_new = screen_templates([refined], images[1000:], z[1000:])[0].fidelity
    assert after_fit > before + 0.03 and after_new > before


def test_blank_template_cannot_be_refined():
    with pytest.raises(ValueError, match="blank"):
        refine_template(Template.from_array(np.zeros((12, 12)), "blank"), blob_images(20),
                        np.arange(20) % 2)


def test_network_templates_have_the_image_shape_and_name_their_source():
    oracle = tiny_oracle()
    images = blob_images(120)
    z = oracle.labels({"image": images})
    found = network_templates(oracle, images, z if 0 < z.mean() < 1 else np.arange(120) % 2,
                              exemplars=2, smooth_samples=1)
    names = [t.name for t in found]
    assert {"grad_aligned", "grad_smooth", "jacobian_sv0", "jacobian_sv1"} <= set(names)
    assert any(n.startswith("conv1_") for n in names)
    assert sum(n.startswith("grad_exemplar_") for n in names) == 2
    for t in found:
        assert t.shape == (12, 12) and t.source.split(":")[0] in ("network", "exemplar")
        assert np.abs(t.array).max() == pytest.approx(1.0)


def test_aligned_mean_recovers_a_direction_whose_sign_flips_across_a_band():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 6))
    signs = rng.choice([-1.0, 1.0], size=200)
    grads = signs[:, None, None] * w * rng.uniform(0.5, 2.0, size=(200, 1, 1))
    mean, direction = aligned_mean(grads)
    assert abs(np.corrcoef(mean.ravel(), w.ravel())[0, 1]) > 0.999
    assert abs(np.corrcoef(direction.ravel(), w.ravel())[0, 1]) > 0.999
    assert np.linalg.norm(grads.mean(axis=0)) < np.linalg.norm(mean)  # a plain mean cancels


def test_exemplars_aligned_with_a_direction_are_the_images_it_looks_like():
    images = blob_images(50)
    images[17] = stroke()
    picked = network_aligned_exemplars(images, 2 * stroke() - 1, 3)
    assert picked[0] == 17


def test_filter_templates_need_both_labels_and_a_convolution():
    oracle = tiny_oracle()
    images = blob_images(40)
    assert filter_templates(oracle, images, np.ones(40)) == []
    maps = filter_templates(oracle, images, np.arange(40) % 2)
    assert maps and all(t.source.startswith("network:conv1-filter") for t in maps)
    with pytest.raises(ValueError, match="labels must have shape"):
        filter_templates(oracle, images, np.ones(3))


def test_gradient_templates_reject_a_non_image_oracle():
    class Flat:
        def input_gradients(self, env):
            return np.zeros((len(env["image"]), 5))
    with pytest.raises(ValueError, match="gradients have shape"):
        gradient_templates(Flat(), blob_images(4))


# ---------------------------------------------------------------------------
# The pipeline and the evidence on the synthetic task.

def test_template_rows_lie_inside_the_searchs_fit_rows():
    images = blob_images(400, seed=2)
    z = band_labels(images, stroke())
    features = image_features([Template.from_array(2 * stroke() - 1, "s")])
    synth = Synthesizer(time_limit=5, features=features, max_feature_size=3, seed=3).fit(
        {"image": images}, z)
    fit_rows, hold_rows = search_split(400, 3)
    pred = synth.best_.program.evaluate({"image": images}).astype(np.int64)
    assert synth.best_.holdout_fidelity == pytest.approx(float((pred[hold_rows] ==
                                                                z[hold_rows]).mean()))
    assert len(fit_rows) == 320 and not set(fit_rows) & set(hold_rows)


def test_pipeline_finds_a_band_on_a_user_template_and_explains_it():
    images = blob_images(800, seed=4)
    z = band_labels(images, stroke())
    hint = Template.from_array(stroke(), "hint", source="hint:stroke.png")
    rep = recover_image_program(images, z, user_templates=[hint], time_limit=8, evidence=False,
                                pca=2)
    assert rep.best.size <= 15 and rep.fidelity > 0.98
    assert rep.sources() == {"T_hint_signed": "hint:stroke.png signed (2T-1)"}
    data = rep.to_json()
    assert data["best"]["template_sources"] == rep.sources()
    assert data["best"]["fidelity_all_queries"] == rep.fidelity
    namespace: dict = {}
    exec(data["best"]["python"], namespace)  # the printed program labels one image
    expected = rep.best.program.evaluate({"image": images[:20]}).astype(int)
    assert [namespace["label"](im) for im in images[:20]] == expected.tolist()


def test_front_is_cut_at_the_size_limit():
    images = blob_images(300, seed=5)
    z = band_labels(images, stroke())
    synth = Synthesizer(time_limit=5, features=image_features([]), max_feature_size=3).fit(
        {"image": images}, z)
    cut = cut_front(synth.result_, 7, 2e-4)
    assert all(c.size <= 7 for c in cut.pareto) and cut.best in cut.pareto
    with pytest.raises(ValueError, match="no program of at most 0 nodes"):
        cut_front(synth.result_, 0, 2e-4)
    assert atoms_within(15) == 2 and atoms_within(17) == 3 and atoms_within(4) == 1


def test_a_larger_program_must_beat_a_smaller_one_significantly_on_held_out_rows():
    images = blob_images(2000, seed=7)
    truth = band_labels(images, stroke())
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(2000) < 0.05, 1 - truth, truth)  # a network's mistakes
    feature = apply("dot", IMAGE_VAR, Template.from_array(2 * stroke() - 1, "s"))
    score = feature.evaluate({"image": images})
    lo, hi = np.quantile(score, [0.3, 0.7])
    band = apply("or_", apply("lt", feature, const(lo)), apply("gt", feature, const(hi)))
    wiggle = apply("xor", band, apply("gt", apply("ink", IMAGE_VAR), const(1e9)))  # = band
    _, hold = search_split(2000, 0)

    def result(*programs):
        from synth.results import Candidate, SearchResult, SearchStats
        front = tuple(Candidate.of(p, ["image"], 0.9 + 0.01 * i, None)
                      for i, p in enumerate(programs))
        return SearchResult(front[-1], front, SearchStats(0, 0, 1.0, 3, 0, 2000))

    # the same behaviour in more nodes is not worth them: the smaller program is chosen
    assert prefer_simpler(result(band, wiggle), images, noisy, hold).best.program == band
    # a band that explains far more rows than one threshold keeps its size
    one = apply("gt", feature, const(hi))
    assert prefer_simpler(result(one, band), images, noisy, hold).best.program == band
    assert prefer_simpler(result(one, band), images, noisy, hold[:0]).best.program == band


def test_decodability_reads_features_and_atoms_from_every_layer():
    oracle = tiny_oracle()
    images = blob_images(300, seed=6)
    t = Template.from_array(2 * stroke() - 1, "s")
    feature = apply("dot", IMAGE_VAR, t)
    program = apply("or_", apply("lt", feature, const(-20.0)), apply("gt", feature, const(5.0)))
    assert program_features(program) == [feature]
    assert len(program_atoms(program)) == 2
    layers = default_layers(oracle)
    assert layers == ["conv1", "relu1", "pool1", "fc1", "relu2", "fc2"]
    ev = decodability(oracle, {"image": images}, program,
                      features=[apply("ink", IMAGE_VAR)], max_rows=300)
    assert ev["rows"] == {"train": 150, "test": 150}
    r2 = {f["feature"]: f["r2"] for f in ev["features"]}
    # conv1 is linear in the pixels: a linear feature of the image is fully readable there
    assert r2[str(feature)]["conv1"] > 0.95
    assert all(abs(v) < 0.2 for v in ev["control"]["r2"].values())
    assert {a["atom"] for a in ev["atoms"]} == {str(program), *map(str, program_atoms(program))}
    assert json.loads(json.dumps(ev)) == ev


# ---------------------------------------------------------------------------
# The command line.

def test_a_hint_that_is_not_an_image_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "hint.png"
    bad.write_text("not a picture")
    assert main(["challenge", "mnist", "--hint", str(bad), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "synth: error:" in err and "hint.png is neither a .npy array nor an image" in err
    assert main(["search", "--domain", "mnist", "--model", "m.pt", "--arch", "casper-cnn",
                 "--hint", str(bad)]) == 1
    assert "hint.png is neither" in capsys.readouterr().err
    assert main(["challenge", "mnist", "--hint", str(tmp_path / "missing.png")]) == 1
    assert "does not exist" in capsys.readouterr().err


def subparser(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_both_entry_points_take_the_same_options():
    from benchmarks.casper_mnist import build_parser as module_parser
    from synth.cli import build_parser

    def options(parser: argparse.ArgumentParser) -> set[str]:
        return {s for a in parser._actions for s in a.option_strings}

    synth = options(subparser(build_parser(), "challenge", "mnist"))
    assert {"--hint", "--max-size", "--refine", "--no-refine", "--max-images", "--seed",
            "--json", "--time-limit"} <= synth
    assert options(subparser(module_parser(), "challenge")) == synth
    assert options(subparser(module_parser(), "peers")) == synth


def test_module_entry_point_options_equal_synth_challenge_mnist(monkeypatch):
    import benchmarks.casper_mnist as casper
    from synth.cli import build_parser

    seen = {}

    def record(args, out=None):
        seen["module"] = vars(args)
        return 0
    monkeypatch.setattr(casper, "run", record)
    argv = ["--max-size", "9", "--no-refine", "--max-images", "500", "--seed", "3",
            "--json", "x.json", "--hint", "h.png", "--time-limit", "20", "--quiet"]
    assert casper.main(["challenge", *argv]) == 0
    parsed = vars(build_parser().parse_args(["challenge", "mnist", *argv]))
    module = {k: v for k, v in seen["module"].items() if k not in ("command", "run")}
    assert {k: v for k, v in parsed.items() if k not in ("challenge", "run")} == module
    assert module["refine"] == 0 and module["max_size"] == 9 and module["max_images"] == 500


@pytest.mark.parametrize("argv, message", [
    (["--max-images", "3"], "--max-images must be at least 10"),
    (["--max-size", "0"], "--max-size must be positive"),
    (["--refine", "-1"], "--refine must be 0 or more"),
    (["--primitives", "p.py"], "takes no user primitives"),
])
def test_bad_challenge_options_are_clear_errors_from_both_entry_points(argv, message, capsys):
    from benchmarks.casper_mnist import main as module_main

    assert main(["challenge", "mnist", *argv, "--quiet"]) == 1
    assert message in capsys.readouterr().err
    assert module_main(["challenge", *argv, "--quiet"]) == 1
    assert message in capsys.readouterr().err


def test_refine_and_no_refine_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(["challenge", "mnist", "--refine", "2", "--no-refine"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_wrong_shaped_cnn_is_a_clear_error_on_the_command_line(tmp_path, capsys):
    data_file("mnist", "t10k-images-idx3-ubyte.gz")
    from oracles.architectures import CasperCNN

    state = CasperCNN().state_dict()
    state["fc1.weight"] = torch.zeros(200, 300)
    bad = tmp_path / "bad_cnn.pt"
    torch.save(state, bad)
    assert main(["search", "--domain", "mnist", "--model", str(bad), "--arch",
                 "casper-cnn"]) == 1
    err = capsys.readouterr().err
    assert "synth: error:" in err and "bad_cnn.pt" in err and "Traceback" not in err
    assert "fc1.weight: expected shape (200, 400), found (200, 300)" in err


def test_image_subsets_are_seeded_and_keep_the_data_order():
    images, classes = load_domain_images("digits", 100, seed=4)
    everything, all_classes = load_domain_images("digits")
    rows = np.sort(np.random.default_rng(4).choice(len(everything), 100, replace=False))
    assert np.array_equal(images, everything[rows]) and np.array_equal(classes,
                                                                       all_classes[rows])
    assert np.array_equal(load_domain_images("digits", 100, seed=4)[0], images)
    assert not np.array_equal(load_domain_images("digits", 100, seed=5)[0], images)
    with pytest.raises(ValueError, match="max_images must be positive"):
        load_domain_images("digits", 0)
    with pytest.raises(ValueError, match="unknown image domain 'cifar'"):
        load_domain_images("cifar")


# ---------------------------------------------------------------------------
# The challenge itself, on a subset of the test images.

def challenge_args(**kw) -> argparse.Namespace:
    base = dict(hint=None, time_limit=15.0, seed=0, max_atoms=12, beam_width=4,
                max_feature_size=6, primitives=[], json=None, quiet=True, max_images=1200)
    base.update(kw)
    return argparse.Namespace(**base)


def test_challenge_runs_end_to_end_on_a_subset(tmp_path, capsys):
    data_file("casper", "mnist_model.pt")
    data_file("mnist", "t10k-images-idx3-ubyte.gz")
    from benchmarks.casper_mnist import run

    out = tmp_path / "mnist.json"
    assert run(challenge_args(json=str(out))) == 0
    printed = capsys.readouterr().out
    assert "def label(image):" in printed and "Template sources:" in printed
    assert "Evidence: linear decodability" in printed
    data = json.loads(out.read_text())
    best = data["best"]
    assert best["size"] <= 15 and {"python", "size", "fidelity"} <= set(best)
    assert best["fidelity_all_queries"] > 0.75  # a fraction of the budget, a tenth of the data
    assert best["template_sources"] and best["evidence"]["features"]
    layers = best["evidence"]["layers"]
    assert {"conv1", "fc1", "fc2"} <= set(layers)
    for entry in best["evidence"]["features"]:
        assert set(entry["r2"]) == set(layers)
    assert data["challenge"]["images"] == 1200 and data["stats"]["queries"] == 1200
    assert all(c["size"] <= 15 for c in data["pareto"])


def test_trees_past_the_size_limit_are_kept_beside_the_answer_never_as_it():
    """Labels a random table of thirty bands of ink, which no formula of a few
    atoms states: with trees the front past the limit explains them; the answer
    stays within it."""
    images = blob_images(600, seed=6)
    ink = images.sum(axis=(1, 2))
    table = np.random.default_rng(6).random(30) < 0.5
    z = table[np.digitize(ink, np.quantile(ink, np.linspace(0, 1, 31)[1:-1]))].astype(np.int64)
    reports = [recover_image_program(images, z, time_limit=6, evidence=False, pca=0,
                                     max_size=8, tree_leaves=leaves) for leaves in (0, 64)]
    for rep in reports:
        assert rep.best.size <= 8 and all(c.size <= 8 for c in rep.result.pareto)
        assert all(c.size > 8 for c in rep.beyond)
    without, with_trees = (max([c.fidelity for c in rep.beyond], default=0.0)
                           for rep in reports)
    assert with_trees > max(without, 0.95) and with_trees > reports[1].best.fidelity
