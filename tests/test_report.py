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
from synth.report import (decode_array, encode_array, grid_data, render_report, render_value,
                          write_report)
from synth.search import Synthesizer

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


@pytest.mark.skipif(_CHROMIUM is None, reason="headless browser check needs Chromium "
                                              "(Debian: apt-get install -y chromium)")
def test_page_renders_in_headless_chromium(searched, tmp_path):
    domain, labels, data = searched
    result = tmp_path / "result.json"
    result.write_text(json.dumps(_with_extras(data, domain, labels)))
    page = write_report(result, tmp_path / "report.html")
    url = page.resolve().as_uri()
    shot = tmp_path / "shot.png"
    run = _chromium(tmp_path, "profile1", "--hide-scrollbars", f"--screenshot={shot}",
                    "--window-size=1280,2400", url)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not _console(run), "JavaScript console output:\n" + "\n".join(_console(run))
    assert shot.exists() and shot.stat().st_size > 10_000
    from PIL import Image
    with Image.open(shot) as img:
        assert img.size == (1280, 2400)
        colours = img.convert("RGB").resize((64, 120)).getcolors(64 * 120)
    assert colours is None or len(colours) > 20  # not a blank page
    dom = _chromium(tmp_path, "profile2", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    # the script ran to its end and both plots decoded
    assert 'data-rendered="ok"' in body.group(0) and 'data-images="2/2"' in body.group(0)
    assert not _console(dom)

    # control: the same check does see a script error on a broken page
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace("</body>", "<script>noSuchFunction();</script>"
                                                          "</body>"))
    run = _chromium(tmp_path, "profile3", "--dump-dom", broken.resolve().as_uri())
    assert any("noSuchFunction" in line for line in _console(run)), run.stderr[-2000:]
