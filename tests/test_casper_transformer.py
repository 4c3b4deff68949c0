"""Challenge 2: internal features of a transformer, grid evidence, and the challenge command.

Everything here runs on synthetic label files and tiny networks; the one test
reading ``$SYNTH_DATA_DIR`` skips only when it is unset, and fails when it is
set but the file is missing.
"""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from dsl.domains import GridDomain
from dsl.printing import compile_python, to_python
from dsl.program import Apply, Var, apply, const
from dsl.types import INT
from oracles.transformer import build_transformer, encode_pairs, run_with_cache
from oracles.transformer_features import (Table, feature_leaves, grid_env, lookup_primitive,
                                          read_internals, round_significant, uses_lookup)
from synth.evidence_grid import (agreements, atom_truths, atoms_of, boundary_distance,
                                 disagreements, probe, shuffled_control, top_correlations)

P = 113
TINY = dict(d_model=16, n_heads=2, d_head=8, d_mlp=32)


def tiny_model(seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_transformer(**TINY).eval()


# -- lookup primitives -------------------------------------------------------------------

def test_lookup_primitives_print_as_self_contained_python_that_agrees():
    rng = np.random.default_rng(0)
    one = lookup_primitive("test_pc0", rng.normal(size=P) * 3.7)
    two = lookup_primitive("test_neuron", rng.normal(size=(P, P)) * 0.05)
    x, y = Var("x", INT), Var("y", INT)
    program = apply("or_", apply("gt", apply("add", Apply(one, (x,)), Apply(one, (y,))),
                                 const(0.25)),
                    apply("lt", Apply(two, (apply("mod", apply("add", x, y), const(P)), y)),
                          const(-0.01)))
    env = grid_env(P)
    source = to_python(program, ["x", "y"])
    assert "import" not in source.split("def ")[0]  # nothing beyond the standard library
    label = compile_python(source)
    printed = np.array([label(int(a), int(b)) for a, b in zip(env["x"], env["y"])])
    assert np.array_equal(printed, program.evaluate(env).astype(int))
    assert uses_lookup(program) == ["test_neuron", "test_pc0"]


def test_lookup_primitives_are_total_and_exact():
    values = np.linspace(-2, 3, P) ** 3 + 1 / 3
    prim = lookup_primitive("test_cubes", values, digits=4)
    table = round_significant(values, 4)
    namespace: dict = {}
    exec(prim.helper, namespace)
    fn = namespace["test_cubes"]
    n = np.array([-5, -1, 0, 1, 56, 112, 113, 400])
    vec = prim.impl(n.astype(np.float64))  # the enumerator holds ints as floats
    assert np.array_equal(vec, [fn(int(v)) for v in n])
    assert vec[0] == 0.0 and vec[-1] == 0.0 and vec[2] == table[0] and vec[5] == table[112]
    assert np.allclose(table, values, rtol=1e-3)
    assert not prim.search  # never joins other searches of the process by itself


def test_feature_leaves_let_the_search_use_a_table():
    from synth.search import Synthesizer
    rng = np.random.default_rng(1)
    side = 30
    table = Table("test_code", rng.normal(size=side), "a random code per number")
    leaves = feature_leaves([table])
    env = GridDomain((side, side)).all_inputs()
    labels = (round_significant(table.values, 4)[env["x"]] > 0.3) & (env["y"] > 12)
    s = Synthesizer(time_limit=6, max_feature_size=3, max_atoms=2, seed=0,
                    features=leaves).fit(env, labels.astype(int))
    assert s.best_.fidelity == 1.0, str(s.best_.program)
    assert "test_code" in s.best_.python


# -- reading a transformer ---------------------------------------------------------------

def test_internals_of_a_tiny_transformer_match_independent_computations():
    from sklearn.decomposition import PCA
    model = tiny_model()
    internals = read_internals(model, n_embedding=3, n_reads=2, n_neurons=4)
    env = grid_env(P)
    _, cache = run_with_cache(model, encode_pairs(env), ["blocks.0.mlp.hook_pre"])
    pre = cache["blocks.0.mlp.hook_pre"][:, -1].double().numpy().reshape(P, P, -1)
    for t, i in zip(internals.neurons, internals.top_neurons):
        assert t.name == f"neuron{i}" and t.values.shape == (P, P)
        assert np.allclose(t.values, pre[:, :, i], atol=1e-5)
    ranks = internals.attribution.argsort()[::-1]
    assert list(internals.top_neurons) == list(ranks[:4])
    w_e = model.embed.W_E.detach().double().numpy()[:, :P].T
    reference = PCA(3).fit_transform(w_e)
    for k, t in enumerate(internals.embedding):
        assert t.values.shape == (P,)
        assert np.allclose(np.abs(t.values), np.abs(reference[:, k]), atol=1e-6)
    assert [t.name for t in internals.reads] == ["readx_pc0", "readx_pc1", "ready_pc0",
                                                 "ready_pc1"]
    assert 0.0 <= internals.additive_r2 <= 1.0
    assert json.dumps(internals.summary())


# -- grid evidence -----------------------------------------------------------------------

def test_boundary_distance_and_disagreements():
    grid = np.zeros((6, 6), dtype=int)
    grid[:, 3:] = 1
    dist = boundary_distance(grid)
    assert dist[0].tolist() == [3, 2, 1, 1, 2, 3]
    pred = grid.copy()
    pred[2, 3] = 0  # next to the boundary
    pred[5, 0] = 1  # far from it
    d = disagreements(pred, grid)
    assert d["count"] == 2 and d["near_boundary"]["1"] == 0.5
    assert d["false_positive"] == 1 and d["false_negative"] == 1
    assert d["rows"][0][1] == pytest.approx(1 / 6)
    assert np.isinf(boundary_distance(np.ones((3, 3)))).all()
    assert agreements(pred.ravel(), {"g": grid}) == {"g": pytest.approx(34 / 36)}


def test_atoms_and_controls():
    env = GridDomain((20, 20)).all_inputs()
    x, y = Var("x", INT), Var("y", INT)
    a = apply("gt", apply("add", x, y), const(10))
    b = apply("eq", apply("mod", x, const(3)), const(0))
    program = apply("xor", apply("and_", a, b), a)
    assert atoms_of(program) == [a, b]
    truths = atom_truths(program, env)
    assert list(truths) == ["x + y > 10", "x % 3 == 0"]
    control = shuffled_control(truths["x % 3 == 0"], (20, 20), seed=1)
    assert control.sum() == truths["x % 3 == 0"].sum()
    grid = control.reshape(20, 20)
    assert (grid == grid[:, :1]).all()  # still a function of the first input alone


def test_probe_decodes_a_linear_atom_and_not_noise():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(600, 10))
    linear = acts[:, 2] - 0.5 * acts[:, 7] > 0
    noise = rng.random(600) < 0.5
    assert probe(acts, linear, max_rows=600) > 0.95
    assert probe(acts, noise, max_rows=600) < 0.65
    assert probe(acts, np.zeros(600, bool)) is None
    assert top_correlations(acts, linear, [f"u{i}" for i in range(10)], top=1)[0][0] == "u2"


# -- the challenge command ---------------------------------------------------------------

def fake_data(root, labels, model_labels):
    folder = root / "casper"
    folder.mkdir(parents=True)
    with open(folder / "transformer_label_info.pkl", "wb") as fh:
        pickle.dump({"labels": labels.astype(float), "model_labels": model_labels.astype(float)},
                    fh)


def challenge_args(argv, **extra):
    from synth.cli import build_parser
    args = build_parser().parse_args(["challenge", "transformer", *argv])
    for k, v in extra.items():
        setattr(args, k, v)
    return args


def synthetic_labels():
    env = grid_env(P)
    x, y = env["x"].reshape(P, P), env["y"].reshape(P, P)
    labels = (x % 4 == 1) != (y > 60)
    rng = np.random.default_rng(0)
    model_labels = labels ^ (rng.random(labels.shape) < 0.02)
    return labels.astype(int), model_labels.astype(int)


def test_challenge_end_to_end_with_a_tiny_replica(tmp_path, monkeypatch, capsys):
    labels, model_labels = synthetic_labels()
    fake_data(tmp_path / "data", labels, model_labels)
    monkeypatch.setenv("SYNTH_DATA_DIR", str(tmp_path / "data"))
    checkpoint = tmp_path / "tiny.pt"
    torch.save(tiny_model(3).state_dict(), checkpoint)
    out = tmp_path / "result.json"
    args = challenge_args(["--time-limit", "4", "--max-feature-size", "3", "--max-atoms", "2",
                           "--json", str(out), "--quiet"],
                          replica=str(checkpoint), n_embedding=1, n_reads=1, n_neurons=2,
                          probe_rows=300)
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert "search on replica" in printed and "search on model_labels" in printed
    data = json.loads(out.read_text())
    for key in ("best", "pareto", "stats", "settings"):  # what ``synth search`` writes
        assert key in data
    agree = data["agreement"]
    assert set(agree) == {"replica", "model_labels", "labels"}
    assert all(0.0 <= v <= 1.0 for v in agree.values())
    assert set(data["challenge"]["searches"]) == {"replica", "model_labels"}
    # the printed program computes exactly the agreements reported
    label = compile_python(data["best"]["python"])
    env = grid_env(P)
    pred = np.array([label(int(a), int(b)) for a, b in zip(env["x"], env["y"])])
    assert (pred == model_labels.ravel()).mean() == pytest.approx(agree["model_labels"])
    assert (pred == labels.ravel()).mean() == pytest.approx(agree["labels"])
    # each front entry's agreement with the ground truth, as its printed program computes it
    for name, search in data["challenge"]["searches"].items():
        assert [e["size"] for e in search["front_agreement"]] == [c["size"] for c in search["pareto"]]
        last, stated = search["pareto"][-1], search["front_agreement"][-1]
        label = compile_python(last["python"])
        pred = np.array([label(int(a), int(b)) for a, b in zip(env["x"], env["y"])])
        assert (pred == labels.ravel()).mean() == pytest.approx(stated["labels"])
    evidence = data["best"]["evidence"]
    assert evidence["agreement"] == agree
    assert set(evidence["disagreement"]) == {"replica", "model_labels", "labels"}
    assert evidence["proposed_atoms"] and evidence["internals"]["top_neurons"]
    prefix = {"replica": "replica_", "model_labels": "net_"}[evidence["origin"]]
    answers = [f["name"] for f in evidence["answer_tables"]]
    assert all(name.startswith(prefix) for name in answers)
    assert sum("_pc" in name for name in answers) == 8  # 4 factors over x, 4 over y
    assert sum("_start" in name or "_cut" in name for name in answers) == 6  # 2 changes
    assert evidence["atoms"], "the answer's atoms are probed inside the replica"
    for entry in evidence["atoms"].values():
        assert set(entry["probes"]) >= {"embed[x]", "embed[y]", "mlp_post", "resid_post"}
        assert entry["correlates"]["neurons"]


def test_challenge_trains_and_caches_the_replica(tmp_path, monkeypatch):
    from oracles.transformer_training import replica_path
    labels, model_labels = synthetic_labels()
    fake_data(tmp_path / "data", labels, model_labels)
    monkeypatch.setenv("SYNTH_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "result.json"
    args = challenge_args(["--train", "--time-limit", "2", "--max-feature-size", "2",
                           "--max-atoms", "1", "--json", str(out), "--quiet"],
                          epochs=1, cache_dir=str(tmp_path / "cache"), oracle="replica",
                          internals=False, probe_rows=200)
    assert args.run(args) == 0
    assert replica_path(labels, tmp_path / "cache", 0, 1).exists()
    data = json.loads(out.read_text())
    assert data["challenge"]["oracle"] == "replica"
    assert data["challenge"]["replica"]["training"]["epochs"] == 1
    assert set(data["agreement"]) == {"replica", "model_labels", "labels"}


def test_replica_search_needs_a_replica(tmp_path, monkeypatch):
    labels, model_labels = synthetic_labels()
    fake_data(tmp_path / "data", labels, model_labels)
    monkeypatch.setenv("SYNTH_DATA_DIR", str(tmp_path / "data"))
    args = challenge_args(["--time-limit", "1", "--quiet"], oracle="replica")
    with pytest.raises(ValueError, match="needs a replica"):
        args.run(args)


def test_missing_label_file_is_an_error(tmp_path, monkeypatch):
    from synth.cli import main
    monkeypatch.setenv("SYNTH_DATA_DIR", str(tmp_path))
    assert main(["challenge", "transformer", "--time-limit", "1", "--quiet"]) == 1


def test_published_label_file():
    """The real file: skipped only when SYNTH_DATA_DIR is unset; a missing file fails."""
    if not os.environ.get("SYNTH_DATA_DIR"):
        pytest.skip("SYNTH_DATA_DIR is not set")
    from benchmarks.casper_transformer import load_tables
    truth, network = load_tables(GridDomain((P, P)))
    env = grid_env(P)
    labels, model_labels = truth.labels(env), network.labels(env)
    assert labels.shape == model_labels.shape == (P * P,)
    assert set(np.unique(labels)) == {0, 1}
    assert 0.97 < (labels == model_labels).mean() < 1.0  # the network is imperfect


def test_extra_flags_parse_into_the_options_the_command_reads():
    import argparse

    from benchmarks.casper_transformer import DEFAULTS, _option, add_arguments, json_safe
    from synth.cli import add_search_options
    parser = argparse.ArgumentParser()
    add_search_options(parser)
    add_arguments(parser)
    args = parser.parse_args(["--oracle", "table", "--no-internals", "--epochs", "7",
                              "--n-neurons", "3", "--answer-factors", "0", "--answer-steps",
                              "1"])
    assert (_option(args, "oracle"), _option(args, "internals"), _option(args, "epochs"),
            _option(args, "n_neurons"), _option(args, "answer_factors"),
            _option(args, "answer_steps")) == ("table", False, 7, 3, 0, 1)
    assert _option(argparse.Namespace(), "probe_rows") == DEFAULTS["probe_rows"]
    x = Var("x", INT)
    assert json.dumps(json_safe({"f": (apply("add", x, const(1)),), "a": np.arange(2),
                                 "inf": float("inf")})) == \
        '{"f": ["x + 1"], "a": [0, 1], "inf": null}'
