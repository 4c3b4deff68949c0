"""The command line: search from a label table, JSON output, user primitives, clear errors."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dsl.domains import GridDomain
from synth.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synth.cli", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def labels_file(tmp_path):
    env = GridDomain((30, 30)).all_inputs()
    table = ((env["x"] + 2 * env["y"]) > 40).reshape(30, 30).astype(np.int64)
    path = tmp_path / "labels.npy"
    np.save(path, table)
    return path


def test_search_prints_front_and_writes_json(labels_file, tmp_path, capsys):
    out = tmp_path / "result.json"
    code = main(["search", "--domain", "grid:30x30", "--labels", str(labels_file),
                 "--time-limit", "10", "--max-feature-size", "4", "--json", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Pareto front" in printed and "def label(x, y):" in printed
    result = json.loads(out.read_text())
    assert result["best"]["fidelity"] == 1.0
    assert set(result["stats"]) >= {"programs_evaluated", "seconds", "programs_per_second"}
    assert all({"python", "size", "fidelity"} <= set(c) for c in result["pareto"])
    namespace: dict = {}
    exec(result["best"]["python"], namespace)
    assert namespace["label"](20, 11) == 1 and namespace["label"](20, 10) == 0


def test_user_primitive_file_extends_the_search(tmp_path):
    prims = tmp_path / "my_prims.py"
    prims.write_text(textwrap.dedent('''
        import numpy as np
        from dsl import INT, primitive

        @primitive("gcd", (INT, INT), INT, commutative=True, imports=("math",),
                   python="def gcd(a, b):\\n    return math.gcd(a, b)")
        def gcd(a, b):
            return np.gcd(a.astype(np.int64), b.astype(np.int64))
    '''))
    env = GridDomain((30, 30)).all_inputs()
    table = (np.gcd(env["x"], env["y"]) > 3).reshape(30, 30).astype(np.int64)
    labels = tmp_path / "gcd.npy"
    np.save(labels, table)
    out = tmp_path / "gcd.json"
    proc = run_cli("search", "--domain", "grid:30x30", "--labels", str(labels),
                   "--primitives", str(prims), "--time-limit", "15", "--max-feature-size", "4",
                   "--json", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    best = json.loads(out.read_text())["best"]
    assert best["fidelity"] == 1.0 and "gcd(" in best["python"]


@pytest.mark.parametrize("args, message", [
    (["search", "--domain", "grid:0x5", "--labels", "x.npy"], "grid"),
    (["search", "--domain", "ring:5", "--labels", "x.npy"], "unknown domain"),
    (["search", "--labels", "/nonexistent/labels.npy"], "labels.npy"),
    (["search", "--labels", "x.npy", "--primitives", "/nonexistent/p.py"], "p.py"),
])
def test_bad_input_gets_a_one_line_error(args, message, capsys):
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("synth: error:") and message in err and "Traceback" not in err


def test_wrong_table_shape_is_named(tmp_path, capsys):
    path = tmp_path / "small.npy"
    np.save(path, np.zeros((5, 5), dtype=np.int64))
    assert main(["search", "--domain", "grid:30x30", "--labels", str(path)]) == 1
    assert "shape" in capsys.readouterr().err


def test_search_reads_a_saved_network(tmp_path, capsys):
    import torch

    from oracles.architectures import new_model, save_model
    from oracles.training import train_classifier

    domain = GridDomain((20, 20))
    env = domain.all_inputs()
    truth = (env["x"] > env["y"] + 3).astype(np.int64)
    torch.manual_seed(0)
    module, spec = new_model("mlp", {"hidden": [64]}, domain=domain)
    train_classifier(module, spec.encoder()(env), torch.as_tensor(truth), epochs=300, lr=1e-2,
                     weight_decay=0.0, seed=0, optimizer="adam")
    path = tmp_path / "net.pt"
    save_model(path, module, "mlp", spec.config)
    out = tmp_path / "net.json"
    assert main(["search", "--domain", "grid:20x20", "--model", str(path), "--time-limit", "10",
                 "--max-feature-size", "4", "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["best"]["fidelity"] > 0.97 and result["label_weights"] == "uniform"
    # --confidence: the network's doubtful answers count less, and the record says so
    assert main(["search", "--domain", "grid:20x20", "--model", str(path), "--time-limit", "10",
                 "--max-feature-size", "4", "--json", str(out), "--quiet", "--confidence"]) == 0
    result = json.loads(out.read_text())
    assert result["best"]["fidelity"] > 0.97 and result["label_weights"] == "network confidence"


def test_a_file_that_is_not_a_model_is_named(tmp_path, capsys):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a torch file")
    assert main(["search", "--domain", "grid:20x20", "--model", str(path), "--arch", "mlp"]) == 1
    assert "garbage.pt" in capsys.readouterr().err


def test_tree_leaves_reaches_the_image_search_only_when_asked_for():
    """Grids keep the Synthesizer's trees unless told otherwise; images grow
    none by default (their answer is cut at --max-size) and as many leaves as
    ``--tree-leaves`` says when it is given."""
    import argparse

    from synth.cli import add_search_options, synthesizer_from
    from synth.image_search import search_settings
    from synth.search import Synthesizer
    parser = argparse.ArgumentParser()
    add_search_options(parser)
    default, asked, none = (parser.parse_args(a) for a in
                            ([], ["--tree-leaves", "32"], ["--tree-leaves", "0"]))
    assert synthesizer_from(default).tree_leaves == Synthesizer().tree_leaves > 0
    assert (synthesizer_from(asked).tree_leaves, synthesizer_from(none).tree_leaves) == (32, 0)
    assert [search_settings(a)["tree_leaves"] for a in (default, asked, none)] == [0, 32, 0]


def _search_40x40_with(tmp_path, table: np.ndarray, flag: str, value: str):
    """The best program of a 10-second search of ``table`` with an answer-table flag,
    and its answer on every pair."""
    path, out = tmp_path / "table.npy", tmp_path / "table.json"
    np.save(path, table)
    assert main(["search", "--domain", "grid:40x40", "--labels", str(path), flag, value,
                 "--time-limit", "10", "--max-feature-size", "3", "--json", str(out),
                 "--quiet"]) == 0
    best = json.loads(out.read_text())["best"]
    namespace: dict = {}
    exec(best["python"], namespace)
    env = GridDomain((40, 40)).all_inputs()
    pred = np.array([namespace["label"](int(a), int(b)) for a, b in zip(env["x"], env["y"])])
    return best, pred.reshape(40, 40)


def test_answer_factors_give_the_search_the_rows_the_answers_treat_alike(tmp_path):
    row_class = np.random.default_rng(3).random(40) < 0.5  # no arithmetic of x says which
    table = (row_class[:, None] & (np.arange(40)[None, :] > 12)).astype(np.int64)
    best, pred = _search_40x40_with(tmp_path, table, "--answer-factors", "2")
    assert best["fidelity"] == 1.0 and best["size"] <= 9 and "net_x_pc" in best["python"]
    np.testing.assert_array_equal(pred, table)


def test_answer_steps_give_the_search_each_rows_boundary(tmp_path):
    boundary = np.random.default_rng(4).integers(5, 35, 40)  # no arithmetic of x says where
    table = (np.arange(40)[None, :] > boundary[:, None]).astype(np.int64)
    best, pred = _search_40x40_with(tmp_path, table, "--answer-steps", "1")
    assert best["size"] <= 5 and "net_x_cut0" in best["python"]
    # a row's change among held-out cells falls halfway between the fitted ones
    assert (pred == table).mean() > 0.97


@pytest.mark.parametrize("flag", ["--answer-factors", "--answer-steps"])
def test_answer_tables_need_a_two_dimensional_grid(tmp_path, capsys, flag):
    path = tmp_path / "cube.npy"
    np.save(path, np.zeros((4, 4, 4), dtype=np.int64))
    assert main(["search", "--domain", "grid:4x4x4", "--labels", str(path),
                 flag, "2", "--quiet"]) == 1
    assert "answer factors and steps need a 2-D grid" in capsys.readouterr().err
