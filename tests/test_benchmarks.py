"""Benchmarks: hidden programs, suites, the train and bench commands, runner, peers."""
from __future__ import annotations

import ast
import csv
import json

import numpy as np
import pytest

from benchmarks.executors import PoolExecutor, SerialExecutor
from benchmarks.programs import load_hidden, parse_hidden
from benchmarks.runner import BenchConfig, run_benchmark
from benchmarks.suites import ENGINE, GRID_SUITE, SUITES, Task, get_suite
from benchmarks.train_cli import TrainSettings
from dsl.domains import parse_domain
from synth.cli import main

SMALL = "grid:30x30"
#: Engine settings under which a 30x30 search finishes well within its limit,
#: so that it is deterministic for its seed.
QUICK = {"max_feature_size": 3, "max_atoms": 2, "linear_pairs": 0}
TASKS = (Task("sum", "x + y > 30", "small", SMALL), Task("mod", "x % 3 == 0", "small", SMALL),
         Task("corner", "x > 10 and y < 20", "small", SMALL))
ISSUE2 = ["x + y > 100", "x * y % 13 < 4", "abs(x - y) < 17", "x*x + y*y < 5000",
          "(x > 40) != (y < 70)", "y > 0.02 * x * x + 5", "x % 6 == 0 or y % 9 == 0",
          "max(x, y) > 2 * min(x, y)", "x**3 < 9000 * sqrt(y)", "(x + y) % 7 < 3 and x < 80"]


def config(**kw) -> BenchConfig:
    params = dict(time_limit=20.0, synth_options=QUICK)
    params.update(kw)
    return BenchConfig(**params)


# -- hidden programs --------------------------------------------------------------------


def test_vectorised_evaluation_matches_plain_python_on_every_suite_program():
    env = parse_domain("grid:113x113").all_inputs()
    rows = np.arange(0, len(env["x"]), 7)
    sample = {k: v[rows] for k, v in env.items()}
    for task in (*ENGINE, *GRID_SUITE):
        hidden = task.hidden()
        assert np.array_equal(hidden.evaluate(sample), hidden.evaluate_pointwise(sample)), \
            task.name


@pytest.mark.parametrize("source, message", [
    ("x +", "cannot parse"),
    ("x < z", "unknown input 'z'"),
    ("__import__('os').system('true')", "call functions by name"),
    ("open('f') > 0", "unknown function 'open'"),
    ("x.__class__ == 1", "attributes"),
    ("[x for x in y]", "unsupported syntax"),
    ("(lambda: 1)() > 0", "call functions by name"),
    ("lambda: x", "unsupported syntax"),
    ("x + y", "must return a truth value"),
])
def test_bad_hidden_programs_raise_clear_errors(source, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        load_hidden(source, ("x", "y")).evaluate({"x": np.arange(4), "y": np.arange(4)})


def test_python_semantics_and_math_functions():
    env = {"x": np.array([-7, 0, 5, 9]), "y": np.array([2, 3, 4, 16])}
    cases = ["x // y < -1", "x % y == 1", "math.sqrt(y) + floor(x / 2) > 2",
             "max(x, y, 3) == 5", "(x if x > y else y) > 4", "2 < y <= 4", "not x > 0",
             "x ** 2 > 20", "int(x / 2) == -3", "round(y / 3) == 1", "x * 0.5 > pi"]
    for source in cases:
        hidden = parse_hidden(source, ("x", "y"))
        assert np.array_equal(hidden.evaluate(env), hidden.evaluate_pointwise(env)), source


def test_file_programs_define_label(tmp_path):
    good = tmp_path / "hidden.py"
    good.write_text("def label(x, y):\n    return x > y\n")
    env = {"x": np.array([1, 3]), "y": np.array([2, 2])}
    assert load_hidden(str(good), ("x", "y")).evaluate(env).tolist() == [0, 1]
    bad = tmp_path / "bad.py"
    bad.write_text("def other(x, y):\n    return 1\n")
    with pytest.raises(ValueError, match="must define a function label"):
        load_hidden(str(bad), ("x", "y"))


# -- suites -----------------------------------------------------------------------------


def test_grid_suite_is_graded_and_new():
    env = parse_domain("grid:113x113").all_inputs()
    assert len(GRID_SUITE) >= 40
    assert sorted({t.atoms for t in GRID_SUITE}) == [1, 2, 3, 4, 5, 6]
    engine_trees = {ast.dump(ast.parse(p, mode="eval")) for p in ISSUE2}
    behaviours = {parse_hidden(p, ("x", "y")).evaluate(env).tobytes() for p in ISSUE2}
    for task in GRID_SUITE:
        assert ast.dump(ast.parse(task.program, mode="eval")) not in engine_trees, task.name
        labels = task.hidden().evaluate(env)
        assert 0.03 < labels.mean() < 0.97, task.name
        assert labels.tobytes() not in behaviours, task.name
        behaviours.add(labels.tobytes())
        assert task.kinds, task.name


def test_engine_suite_is_exactly_issue_2():
    assert [t.program for t in ENGINE] == ISSUE2
    assert SUITES["engine"] is ENGINE


def test_unbuilt_suites_say_so():
    with pytest.raises(ValueError, match="not built yet"):
        get_suite("images")


# -- synth train ------------------------------------------------------------------------


def test_train_command_writes_a_model_torch_oracle_loads(tmp_path, capsys):
    import torch

    from oracles.torch_oracle import TorchOracle

    out = tmp_path / "model.pt"
    rc = main(["train", "--domain", "grid:12x12", "--program", "x > y", "--arch", "mlp",
               "--epochs", "30", "--hidden", "16", "--seed", "3", "--out", str(out)])
    assert rc == 0 and out.exists()
    assert "wrote" in capsys.readouterr().out
    torch.load(out, weights_only=True)
    domain = parse_domain("grid:12x12")
    oracle = TorchOracle.from_file(out, domain=domain)
    labels = oracle.labels(domain.all_inputs())
    assert labels.shape == (144,) and set(np.unique(labels)) <= {0, 1}


@pytest.mark.parametrize("program, message", [
    ("x * x < 200 *", "cannot parse hidden program"),
    ("x * x < 200 * sqrt(q)", "unknown input 'q'; the domain's inputs are x, y"),
])
def test_train_command_reports_bad_programs_without_traceback(tmp_path, capsys, program,
                                                              message):
    rc = main(["train", "--program", program, "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err
    assert rc == 1
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "m.pt").exists()


# -- the runner -------------------------------------------------------------------------


def test_small_suite_runs_end_to_end_from_networks(tmp_path):
    train = TrainSettings(epochs=60, hidden=(32,))
    cfg = config(source="network", train=train, cache_dir=str(tmp_path / "cache"))
    docs = run_benchmark(TASKS, cfg, tmp_path / "out", progress=False)
    assert [d["task"]["name"] for d in docs] == ["sum", "mod", "corner"]
    for doc in docs:
        assert "error" not in doc, doc.get("error")
        result = doc["results"][0]
        assert result["method"] == "synth"
        assert 0 <= result["agreement"] <= 1 and result["fidelity"] > 0.8
        assert doc["network"]["oracle_agreement"] > 0.5
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(saved["tasks"]) == 3
    with open(tmp_path / "out" / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["task"] for r in rows] == ["sum", "mod", "corner"]
    assert all(r["source"] == "network" and r["oracle_agreement"] for r in rows)
    assert "| sum |" in (tmp_path / "out" / "table.md").read_text()
    assert (tmp_path / "out" / "recovery.svg").read_text().startswith("<svg")
    assert len(list((tmp_path / "cache" / "networks").glob("*.pt"))) == 3


def test_network_training_half_is_independent_of_the_engines_held_out_rows():
    from benchmarks.peers import split_rows
    from benchmarks.train_cli import train_split

    domain = parse_domain(SMALL)
    train = set(train_split(domain, 0).tolist())
    _, held_out = split_rows(domain.size, 0)
    inside = np.mean([r in train for r in held_out.tolist()])
    assert 0.35 < inside < 0.65  # about half, as for independent draws


class CountingExecutor(SerialExecutor):
    def __init__(self):
        self.ran = []

    def map(self, fn, items):
        for item, result in super().map(fn, items):
            self.ran.append(item.task.name)
            yield item, result


def test_resume_skips_finished_tasks(tmp_path):
    first = CountingExecutor()
    run_benchmark(TASKS[:2], config(), tmp_path, executor=first, progress=False)
    assert first.ran == ["sum", "mod"]
    again = CountingExecutor()
    docs = run_benchmark(TASKS, config(), tmp_path, executor=again, progress=False)
    assert again.ran == ["corner"]
    assert [d["task"]["name"] for d in docs] == ["sum", "mod", "corner"]
    assert all(d["results"][0]["exact"] for d in docs)
    other = CountingExecutor()  # another seed is another configuration: run again
    run_benchmark(TASKS[:1], config(seed=1), tmp_path, executor=other, progress=False)
    assert other.ran == ["sum"]


def _outcome(docs):
    return [(d["key"], r["method"], r["program"], r["size"], r["fidelity"], r["agreement"],
             r["exact"]) for d in docs for r in d["results"]]


def test_process_pool_gives_the_same_results_as_serial(tmp_path):
    cfg = config(peers=("tree-xy",))
    serial = run_benchmark(TASKS, cfg, tmp_path / "serial", progress=False)
    pool = PoolExecutor(2)
    try:
        pooled = run_benchmark(TASKS, cfg, tmp_path / "pool", executor=pool, progress=False)
    finally:
        pool.close()
    assert _outcome(serial) == _outcome(pooled)
    assert all(d["results"][0]["exact"] for d in serial)


# -- peers and the bench command ----------------------------------------------------------


def test_peers_score_on_the_same_labels():
    from benchmarks.peers import run_peer

    env = parse_domain("grid:20x20").all_inputs()
    truth = ((env["x"] % 3 == 0) | (env["y"] > 12)).astype(int)
    tree = run_peer("tree-features", env, truth, truth, time_limit=5, seed=0)
    assert tree["exact"] and tree["size"] >= 3
    for name in ("gplearn", "operon"):
        result = run_peer(name, env, truth, truth, time_limit=1, seed=0)
        if result.get("error") and "not installed" in result["error"]:
            continue
        assert 0 <= result["fidelity"] <= 1 and result["size"] >= 1


def test_bench_command_writes_results_and_a_table(tmp_path, capsys):
    rc = main(["bench", "--program", "x > 5", "--program", "x + y < 9", "--domain", "grid:15x15",
               "--time-limit", "10", "--max-feature-size", "2", "--max-atoms", "1",
               "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "| p01 |" in out and "`x > 5`" in out
    assert (tmp_path / "results.csv").exists() and (tmp_path / "table.md").exists()
    rc = main(["bench", "--suite", "casper", "--out", str(tmp_path)])
    assert rc == 1 and "not built yet" in capsys.readouterr().err


@pytest.mark.skipif(not __import__("os").environ.get("SYNTH_TEST_RAY"),
                    reason="starting Ray takes half a minute; set SYNTH_TEST_RAY=1")
def test_ray_executor_gives_the_same_results_as_serial(tmp_path):
    pytest.importorskip("ray")
    from benchmarks.executors import RayExecutor

    serial = run_benchmark(TASKS[:2], config(), tmp_path / "serial", progress=False)
    ray = RayExecutor("local", 2)
    try:
        remote = run_benchmark(TASKS[:2], config(), tmp_path / "ray", executor=ray,
                               progress=False)
    finally:
        ray.close()
    assert _outcome(serial) == _outcome(remote)
