"""``synth report``: one self-contained HTML page per result, rendered in headless Chromium."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from dsl.domains import GridDomain
from synth.cli import main
from synth.report import (decode_array, decode_image, encode_array, grid_data,
                          image_data, render_report, render_value, write_report)
from synth.search import Synthesizer
from tests.helpers import data_file

_CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                  if shutil.which(n)), None)
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_HOSTILE = "<script>alert('x')</script> & \"quotes\""


@pytest.fixture(scope="module")
def searched():
    """A real search over a 40x30 grid, with noisy labels, as its JSON."""
    domain = GridDomain((40, 30))
    env = domain.all_inputs()
    truth = ((env["x"] + 2 * env["y"] > 40) | (env["x"] < 5)).astype(np.int64)
    labels = truth.copy()
    labels[np.random.default_rng(0).choice(len(labels), 12, replace=False)] ^= 1
    result = Synthesizer(time_limit=3, max_feature_size=3).fit(env, labels).result_
    return domain, labels, result.to_json()


def _with_extras(data: dict, domain, labels) -> dict:
    data = json.loads(json.dumps(data))
    data["data"] = grid_data(domain, labels)
    data["best"]["evidence"] = {
        "agreement": {"model_labels": 0.9912, "labels": 0.9875},
        "disagreement": {"labels": {"count": 12, "rate": 0.01, "near_boundary": [0.25, 0.5],
                                    "rows": [{"index": 3, "errors": 2},
                                             {"index": 9, "errors": 1}]}},
        "atoms": [{"atom": _HOSTILE, "probe": {"accuracy": 0.97, "control": 0.61},
                   "units": list(range(100))}],
        "deep": {"a": {"b": {"c": [[1, 2], [3, 4]]}}},
        "missing": None, "nan": float("nan"),
    }
    data["agreements"] = {"truth": 0.99, "note": _HOSTILE}
    return data


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)",
                                                     page)]


def test_page_holds_program_front_boundary_evidence_and_stats(searched):
    domain, labels, data = searched
    page = render_report(_with_extras(data, domain, labels), title="toy")
    best = data["best"]
    assert "def label(x, y):" in page
    assert best["expression"].replace(">", "&gt;").replace("<", "&lt;") in page
    assert page.count("<tr") >= len(data["pareto"]) + 1 and "★" in page
    images = _images(page)
    assert len(images) == 2 and all(img.startswith(b"\x89PNG") for img in images)
    assert "disagrees with the labels on" in page  # the boundary section was drawn
    # generic evidence: nested tables, every key, hostile text escaped, no raw script tag
    for key in ("model_labels", "near_boundary", "accuracy", "control", "deep", "Agreements"):
        assert key in page
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "programs_evaluated" in page and "complexity_penalty" in page
    assert "… 76 more" in page  # long lists are summarised
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)


def test_arrays_round_trip_inline_and_by_path(tmp_path):
    binary = np.random.default_rng(0).integers(0, 2, size=(7, 5))
    assert np.array_equal(decode_array(encode_array(binary)), binary)
    mask = binary.astype(bool)
    assert decode_array(encode_array(mask)).dtype == bool
    classes = np.arange(12).reshape(3, 4) % 5
    assert np.array_equal(decode_array(encode_array(classes)), classes)
    np.save(tmp_path / "t.npy", classes)
    assert np.array_equal(decode_array({"path": "t.npy"}, base_dir=tmp_path), classes)
    with pytest.raises(FileNotFoundError):
        decode_array({"path": "absent.npy"}, base_dir=tmp_path)


def test_generic_rendering_of_any_json():
    html = render_value({"per": {"a": {"p": 1, "q": 2.5}, "b": {"p": 3, "q": 0.125}},
                         "rows": [{"k": 1}, {"k": 2, "extra": "z"}], "empty": {}, "flag": True,
                         "matrix": [[1, 2], [3, 4]]})
    assert html.count("<table") >= 3 and "extra" in html and "yes" in html
    assert render_value(1234567) == "1,234,567"


def test_missing_domain_or_bad_labels_explain_themselves(searched, tmp_path):
    domain, labels, data = searched
    page = render_report(data)
    assert "--domain grid:WxH" in page
    bad = dict(data, data={"domain": "grid:7x7", "labels": encode_array(labels)})
    assert "Cannot draw the grid" in render_report(bad)


def test_program_is_drawn_from_python_when_the_expression_does_not_parse(searched):
    domain, labels, data = searched
    data = _with_extras(data, domain, labels)
    data["best"] = dict(data["best"], expression="mystery(x, y)",
                        python="def mystery(x, y):\n    return x > y\n\n\n"
                               "def label(x, y):\n    return int(mystery(x, y))\n")
    page = render_report(data)
    assert "from its Python source" in page and len(_images(page)) == 2


def test_report_command_with_labels_from_the_command_line(searched, tmp_path, capsys):
    domain, labels, data = searched
    result = tmp_path / "result.json"
    result.write_text(json.dumps(data))
    np.save(tmp_path / "labels.npy", labels.reshape(40, 30))
    assert main(["report", str(result), "--domain", "grid:40x30", "--labels",
                 str(tmp_path / "labels.npy")]) == 0
    out = tmp_path / "result.html"
    assert f"wrote {out}" in capsys.readouterr().out
    assert "disagrees with the labels on" in out.read_text()
    assert main(["report", str(tmp_path / "absent.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_active_result_shows_the_queried_points(tmp_path):
    from oracles.table import TableOracle
    from synth.active import ActiveSynthesizer
    domain = GridDomain((50, 50))
    env = domain.all_inputs()
    oracle = TableOracle((env["x"] > env["y"] + 7).reshape(50, 50).astype(int), domain)
    active = ActiveSynthesizer(Synthesizer(time_limit=2, max_feature_size=3), initial=100,
                               batch=50, budget=250, rounds=2).fit(domain, oracle)
    path = tmp_path / "active.json"
    path.write_text(json.dumps(active.to_json()))
    page = write_report(path).read_text()
    assert "Labels known on" in page and "Active" in page and len(_images(page)) == 2


def _chromium(tmp_path, name: str, *args: str) -> subprocess.CompletedProcess:
    """One headless Chromium run with a fresh profile; console messages go to stderr."""
    return subprocess.run([_CHROMIUM, *_FLAGS, f"--user-data-dir={tmp_path / name}",
                           "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=180)


def _console(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


needs_chromium = pytest.mark.skipif(_CHROMIUM is None, reason="headless browser check needs "
                                    "Chromium (Debian: apt-get install -y chromium)")


def check_in_chromium(tmp_path, page, name: str, height: int = 2400) -> str:
    """Render ``page`` in headless Chromium and check it: a screenshot that is not
    blank, no console output, the page's script ran to its end and every picture
    decoded.  Returns the ``<body>`` tag (its ``data-images`` says ``decoded/all``)."""
    url = page.resolve().as_uri()
    shot = tmp_path / f"{name}.png"
    run = _chromium(tmp_path, f"{name}-shot", "--hide-scrollbars", f"--screenshot={shot}",
                    f"--window-size=1280,{height}", url)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not _console(run), "JavaScript console output:\n" + "\n".join(_console(run))
    assert shot.exists() and shot.stat().st_size > 10_000
    from PIL import Image
    with Image.open(shot) as img:
        assert img.size == (1280, height)
        colours = img.convert("RGB").resize((64, 120)).getcolors(64 * 120)
    assert colours is None or len(colours) > 20  # not a blank page
    dom = _chromium(tmp_path, f"{name}-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not _console(dom)
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    assert 'data-rendered="ok"' in body.group(0)
    decoded = re.search(r'data-images="(\d+)/(\d+)"', body.group(0))
    assert decoded and decoded.group(1) == decoded.group(2), body.group(0)
    return body.group(0)


@needs_chromium
def test_page_renders_in_headless_chromium(searched, tmp_path):
    domain, labels, data = searched
    result = tmp_path / "result.json"
    result.write_text(json.dumps(_with_extras(data, domain, labels)))
    page = write_report(result, tmp_path / "report.html")
    assert 'data-images="2/2"' in check_in_chromium(tmp_path, page, "grid")

    # control: the same check does see a script error on a broken page
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace("</body>", "<script>noSuchFunction();</script>"
                                                          "</body>"))
    run = _chromium(tmp_path, "profile3", "--dump-dom", broken.resolve().as_uri())
    assert any("noSuchFunction" in line for line in _console(run)), run.stderr[-2000:]


# -- image results, evidence and causal tests ---------------------------------------------

@pytest.fixture(scope="module")
def image_result():
    """An image program's result JSON with decodability, counterfactual and patching
    evidence, on the hand-built network of tests/test_causal.py (no search needed)."""
    from dsl.images import Template
    from dsl.program import apply, const
    from synth.causal import counterfactual_images, patching
    from synth.evidence import decodability
    from synth.results import Candidate
    from tests.test_causal import IMAGE_VAR, image_setup, stroke
    images, threshold, oracle = image_setup(stroke(), n=300)
    feature = apply("dot", IMAGE_VAR, Template.from_array(2 * stroke() - 1, "stroke_signed"))
    cut = float(np.median(feature.evaluate({"image": images})))
    program = apply("gt", feature, const(cut))
    evidence = decodability(oracle, {"image": images}, program, max_rows=300)
    evidence["causal"] = [counterfactual_images(oracle, program, images, max_images=100).to_json(),
                          patching(oracle, program, {"image": images}, max_pairs=60).to_json()]
    evidence["evidence_score"] = 0.75
    best = Candidate.of(program, ["image"], 0.9, 0.9, evidence).to_json()
    labels = oracle.labels({"image": images})
    return {"best": best, "pareto": [best], "data": image_data(program, images, labels),
            "evidence": evidence}


def test_image_data_holds_templates_histograms_and_examples_near_thresholds():
    from dsl.images import Template
    from dsl.program import Var, apply, const
    from dsl.types import IMAGE
    image = Var("image", IMAGE)
    t = Template.from_array(np.eye(4), "diag")
    feature = apply("dot", image, t)
    program = apply("or_", apply("lt", feature, const(0.5)), apply("gt", feature, const(2.5)))
    images = np.random.default_rng(0).random((50, 4, 4))
    data = image_data(program, images, np.arange(50) % 2, bins=10, examples=3)["images"]
    assert data["count"] == 50 and data["shape"] == [4, 4]
    assert np.array_equal(decode_array(data["templates"]["T_diag"]), np.eye(4))
    (entry,) = data["features"]
    assert entry["thresholds"] == [0.5, 2.5] and len(entry["edges"]) == 11
    assert sum(entry["counts"]["0"]) + sum(entry["counts"]["1"]) == 50
    values = feature.evaluate({"image": images})
    nearest = np.sort(np.min(np.abs(values[:, None] - [0.5, 2.5]), axis=1))[:3]
    shown = [min(abs(e["value"] - 0.5), abs(e["value"] - 2.5)) for e in data["near_boundary"]]
    assert np.allclose(shown, nearest, atol=1e-4)
    assert decode_image(data["near_boundary"][0]["image"]).max() <= 1.0
    with pytest.raises(ValueError, match="one label each"):
        image_data(program, images, np.zeros(3))


def test_image_page_draws_templates_features_decodability_and_causal_tests(image_result):
    page = render_report(image_result)
    for heading in ("Templates", "Features and thresholds", "Examples near the boundary",
                    "Decodability from each layer", "Causal tests", "Image edits on network",
                    "Patching on network"):
        assert f">{heading}<" in page, heading
    causal = image_result["best"]["evidence"]["causal"]
    assert f"<b>{causal[0]['counterfactual_fidelity']:g}</b>" in page
    assert "Evidence score" in page and "probe at hidden" in page and "encoding at hidden" in page
    assert "Cannot draw the grid" not in page and "--domain grid:WxH" not in page
    assert page.count("id='extra-evidence'") == 0  # the top-level copy is not repeated
    # the front, templates, histogram, examples near the boundary, decodability, edited images
    assert len(_images(page)) == 6


# -- the two challenges, end to end, in a browser -----------------------------------------

@needs_chromium
def test_mnist_challenge_report_renders_with_its_evidence(tmp_path, capsys):
    data_file("casper", "mnist_model.pt")
    data_file("mnist", "t10k-images-idx3-ubyte.gz")
    result, html_path = tmp_path / "mnist.json", tmp_path / "mnist.html"
    assert main(["challenge", "mnist", "--max-images", "800", "--no-refine", "--time-limit",
                 "10", "--json", str(result), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Causal tests on the search's held-out images" in printed
    assert "image edits on the CNN: counterfactual fidelity" in printed
    assert main(["report", str(result), "--html", str(html_path)]) == 0
    page = html_path.read_text()
    for heading in ("Templates", "Features and thresholds", "Examples near the boundary",
                    "Decodability from each layer", "Causal tests", "Image edits on the CNN",
                    "Patching on the CNN", "Ranking"):
        assert f">{heading}<" in page, heading
    evidence = json.loads(result.read_text())["best"]["evidence"]
    assert evidence["causal"][0]["counterfactual_fidelity"] is not None
    assert {"conv1", "fc1"} <= set(evidence["layers"])
    check_in_chromium(tmp_path, html_path, "mnist", height=5000)


@needs_chromium
def test_transformer_challenge_report_renders_with_its_causal_table(tmp_path, capsys):
    data_file("casper", "transformer_label_info.pkl")
    result, html_path = tmp_path / "transformer.json", tmp_path / "transformer.html"
    assert main(["challenge", "transformer", "--time-limit", "8", "--max-feature-size", "4",
                 "--json", str(result), "--quiet"]) == 0
    assert "grid moves on model_labels: counterfactual fidelity" in capsys.readouterr().out
    assert main(["report", str(result), "--html", str(html_path)]) == 0
    page = html_path.read_text()
    assert ">Causal tests<" in page and ">Grid moves on model_labels<" in page
    assert "move x" in page and "disagrees with the labels on" in page
    body = check_in_chromium(tmp_path, html_path, "transformer", height=3000)
    assert 'data-images="2/2"' in body  # the front and the decision boundary
