"""The grid suite at 1000x1000 (issue 6): the scaling is right, and the active
benchmark runs end to end, counting the queries it spends."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from benchmarks.programs import parse_hidden
from benchmarks.scaled import (QUERY_BUDGET, SCALE, ActiveSettings, check_scaling,
                               definition_labels, main, run_suite, scale_program, scaled_suite)
from benchmarks.suites import GRID_SUITE
from dsl.domains import GridDomain
from oracles.table import TableOracle
from synth.active import ActiveSynthesizer
from synth.search import Synthesizer

SIDE = 1000


@pytest.fixture(scope="module")
def env():
    return GridDomain((SIDE, SIDE)).all_inputs()


def _labels(text, env):
    return parse_hidden(text, ("x", "y")).evaluate(env)


def test_scale_is_corner_to_corner():
    assert SCALE == Fraction(999, 112)
    assert QUERY_BUDGET == 20_000  # 2% of the million points


@pytest.mark.parametrize("atom, threshold", [("x > 57", 57), ("y < 85", 85)])
def test_scaled_threshold_agrees_with_its_definition(env, atom, threshold):
    # the definition: the original atom at the real point (x / s, y / s), s = 999/112,
    # i.e. x * 112 / 999 > 57  <=>  112 * x > 57 * 999
    scaled = scale_program(atom)
    var = atom[0]
    op = np.greater if ">" in atom else np.less
    defined = op(env[var] * 112, threshold * 999).astype(np.int64)  # exact integers
    assert np.array_equal(_labels(scaled, env), defined), scaled
    labels, _ = definition_labels(atom, env)
    assert np.array_equal(labels, defined)
    # x / s > 57  <=>  x > 508.39...: on integers, x > 508
    assert scale_program("x > 57") == "x > 508"


def test_scaling_rules():
    # residues keep their period; equalities and homogeneous atoms keep their integers
    assert scale_program("x % 7 < 3 and (x + y) % 2 == 1") == "x % 7 < 3 and (x + y) % 2 == 1"
    assert scale_program("x + y == 112") == "x + y == 999"
    assert scale_program("x == y or x < y") == "x == y or x < y"
    assert scale_program("3*x + 2*y < 230") == "3 * x + 2 * y < 2052"
    # degrees: x*y scales by s^2, sqrt(x) by s^(1/2); a coefficient absorbs the factor
    assert scale_program("x*y > 2100") == "x * y > 167076"
    assert scale_program("sqrt(x) + sqrt(y) > 13").startswith("sqrt(x) + sqrt(y) > 38.8")
    assert scale_program("9*sqrt(x) > y").startswith("26.8")
    # a connective's atoms are scaled in place
    assert scale_program("(x > 40) != (y % 3 == 0)") == "(x > 356) != (y % 3 == 0)"
    with pytest.raises(ValueError, match="cannot scale"):
        scale_program("exp(x) > 3")


def test_every_scaled_program_is_its_definition():
    """The printed scaled program equals the definition on all 10^6 points, every task."""
    assert len(scaled_suite()) == len(GRID_SUITE) == 48
    bad = {t.name: check_scaling(t.program) for t in GRID_SUITE}
    assert not any(bad.values()), {k: v for k, v in bad.items() if v}


def test_active_time_limit_stops_rounds():
    domain = GridDomain((200, 200))
    env = domain.all_inputs()
    oracle = TableOracle(((env["x"] + env["y"]) % 3 == 0).reshape(200, 200), domain)
    active = ActiveSynthesizer(Synthesizer(time_limit=2, max_feature_size=3, clock="cpu"),
                               initial=300, batch=100, budget=2000, time_limit=1e-6,
                               clock="cpu").fit(domain, oracle)
    assert active.stopped_ == "time" and active.history_ == []
    assert active.queries_ == oracle.queries == 300


def test_two_easy_tasks_end_to_end(tmp_path):
    """Two tasks on a pool of two processes, results in the suite's order."""
    settings = ActiveSettings(time_limit=5.0, task_time=20.0, initial=1000, batch=500)
    results = run_suite(tmp_path, ["a1-cut", "a2-band"], settings, log=lambda _: None,
                        workers=2)
    assert [r["task"] for r in results] == ["a1-cut", "a2-band"]
    for r in results:
        assert r["exact"], r.get("program")
        assert r["wrong_points"] == 0 and r["agreement"] == 1.0
        assert 0 < r["queries"] == r["oracle_queries"] <= settings.budget == QUERY_BUDGET
        assert r["queries"] <= 0.02 * SIDE * SIDE
        assert r["scaling_mismatches"] == 0
        assert r["cpu_seconds"] <= settings.task_time + settings.time_limit
        saved = json.loads((tmp_path / "tasks" / f"{r['task']}.json").read_text())
        assert saved["queries"] == r["queries"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exact"] == 2 and summary["max_query_fraction"] <= 0.02
    assert "a1-cut" in (tmp_path / "table.md").read_text()
    # resumable: a second run with the same settings reuses the files
    log = []
    again = run_suite(tmp_path, ["a1-cut", "a2-band"], settings, log=log.append)
    assert [r["queries"] for r in again] == [r["queries"] for r in results]
    assert all("done before" in line for line in log)


def test_list_command(capsys):
    assert main(["--list", "--task", "a2-corner"]) == 0
    out = capsys.readouterr().out
    assert "x > 222 and y < 759" in out and "[0 mismatches]" in out
    assert main(["--task", "nope", "--list"]) == 2
    assert main(["--out", "unused", "--workers", "0"]) == 2
    assert main(["--out", "unused", "--escalation", "0.5"]) == 2


def test_bench_active_subcommand(capsys):
    """``synth bench-active`` (registered through the ``synth.commands`` entry points)."""
    import argparse

    from benchmarks.scaled import register
    parser = argparse.ArgumentParser(prog="synth")
    register(parser.add_subparsers())
    args = parser.parse_args(["bench-active", "--list", "--task", "a1-cut"])
    assert args.run(args) == 0
    assert "x > 508" in capsys.readouterr().out
