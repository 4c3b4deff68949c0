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
from tests.helpers import data_file

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


def test_all_peers_of_a_mixed_run_are_each_named_once():
    from benchmarks.bench_cli import select_peers
    from benchmarks.images_suite import IMAGE_PEERS
    from benchmarks.peers import PEERS

    peers = select_peers("all", list(get_suite("casper")))
    assert len(peers) == len(set(peers)) and set(peers) == set(PEERS) | set(IMAGE_PEERS)


def test_casper_suite_holds_the_two_challenges_with_secret_programs():
    tasks = get_suite("casper")
    assert [t.domain for t in tasks] == ["casper-transformer", "casper-mnist"]
    assert [t.atoms for t in tasks] == [None, None]
    with pytest.raises(ValueError, match="its program is secret"):
        tasks[0].hidden()
    assert [t.on_images for t in tasks] == [False, True]


def test_casper_transformer_task_is_scored_against_the_published_ground_truth(tmp_path):
    from dsl.parse import parse
    from oracles.safe_load import load_pickled_arrays

    tables = load_pickled_arrays(data_file("casper", "transformer_label_info.pkl"))
    truth, network = (np.asarray(tables[k]).ravel() for k in ("labels", "model_labels"))
    task = get_suite("casper")[0]
    [doc] = run_benchmark([task], config(source="network", time_limit=5.0,
                                         peers=("tree-xy", "tree-pixels")), tmp_path)
    assert doc["network"]["oracle_agreement"] == pytest.approx(np.mean(truth == network))
    synth, tree = doc["results"]  # tree-pixels is an image peer: not run on a grid task
    assert tree["method"] == "tree-xy"
    env = parse_domain("grid:113x113").all_inputs()
    pred = np.asarray(parse(synth["program"]).evaluate(env)).astype(int)
    assert synth["fidelity"] == pytest.approx(np.mean(pred == network))
    assert synth["agreement"] == pytest.approx(np.mean(pred == truth))
    assert synth["exact"] == (synth["agreement"] == 1.0)


def test_casper_mnist_task_reports_fidelity_but_no_agreement(tmp_path):
    from dataclasses import replace

    from benchmarks.images_suite import ImageBenchSettings

    data_file("casper", "mnist_model.pt")
    data_file("mnist", "t10k-images-idx3-ubyte.gz")
    task = get_suite("casper")[1]
    settings = ImageBenchSettings(max_images=300)
    [doc] = run_benchmark([task], config(source="network", time_limit=5.0, images=settings,
                                         synth_options={}), tmp_path / "net")
    [synth] = doc["results"]
    assert synth["agreement"] is None and synth["exact"] is None
    assert 0.5 < synth["fidelity"] <= 1.0 and synth["size"] >= 1
    table = (tmp_path / "net" / "table.md").read_text()
    assert "| secret | 1 | 0/0 |" in table
    [doc] = run_benchmark([task], config(source="labels", images=replace(settings)),
                          tmp_path / "labels")
    assert "program is secret" in doc["error"]


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


def test_train_command_trains_the_challenge_transformer_on_a_square_grid(tmp_path, capsys):
    from oracles.architectures import load_model
    from oracles.torch_oracle import TorchOracle

    out = tmp_path / "t.pt"
    rc = main(["train", "--domain", "grid:17x17", "--program", "x > y",
               "--arch", "casper-transformer", "--epochs", "150", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "train 1.0000" in printed
    module, spec = load_model(out)
    assert spec.arch == "casper-transformer" and spec.config["d_vocab"] == 18
    domain = parse_domain("grid:17x17")
    env = domain.all_inputs()
    labels = TorchOracle.from_file(out, domain=domain).labels(env)
    assert np.mean(labels == (env["x"] > env["y"])) > 0.9


def test_grid_transformers_train_as_long_as_the_challenge_replica():
    from benchmarks.train_cli import DEFAULT_EPOCHS
    from oracles.transformer_training import DEFAULT_EPOCHS as REPLICA_EPOCHS

    assert DEFAULT_EPOCHS["casper-transformer"] == REPLICA_EPOCHS


def test_the_transformer_needs_a_square_grid(tmp_path, capsys):
    rc = main(["train", "--domain", "grid:10x12", "--program", "x < 3",
               "--arch", "casper-transformer", "--out", str(tmp_path / "t.pt")])
    assert rc == 1 and "needs a square two-input grid" in capsys.readouterr().err


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


def test_network_labels_are_weighed_by_the_networks_confidence_when_asked(tmp_path):
    from benchmarks.runner import _oracle_labels

    task, train = TASKS[0], TrainSettings(epochs=60, hidden=(32,))
    env = task.grid().all_inputs()
    truth = task.hidden().evaluate(env)
    weighed = config(source="network", train=train, cache_dir=str(tmp_path / "cache"),
                     confidence=True)
    labels, _, weights = _oracle_labels(task, weighed, env, truth)
    assert weights.shape == labels.shape and weights.min() > 0 and weights.max() == 1.0
    assert 0.05 <= np.mean(weights < 1) <= 0.15  # the least sure tenth counts less
    plain = config(source="network", train=train, cache_dir=str(tmp_path / "cache"))
    assert _oracle_labels(task, plain, env, truth)[2] is None  # the default: all the same
    labels_only = config(confidence=True)  # the labels themselves: nothing to weigh by
    assert _oracle_labels(task, labels_only, env, truth)[2] is None


def test_markdown_sections_are_replaced_in_place_or_appended(tmp_path):
    from benchmarks.report import write_section

    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\nintro\n\n<!-- bench:grid -->\nold\n<!-- /bench:grid -->\n\n"
                    "## later\ntext\n")
    write_section(page, "grid", "| new | table |")
    write_section(page, "casper", "second")
    assert page.read_text() == ("# Benchmarks\n\nintro\n\n<!-- bench:grid -->\n| new | table |\n"
                                "<!-- /bench:grid -->\n\n## later\ntext\n\n"
                                "<!-- bench:casper -->\nsecond\n<!-- /bench:casper -->\n")
    page.write_text("<!-- /bench:grid -->\n<!-- bench:grid -->\n")
    with pytest.raises(ValueError, match="not one well-formed pair"):
        write_section(page, "grid", "x")


def test_fidelity_chart_has_a_point_per_task_and_method_at_its_size():
    from xml.etree import ElementTree

    from benchmarks.report import fidelity_svg

    def doc(name, *results):
        return {"task": {"name": name, "atoms": 1}, "results": list(results)}

    docs = [doc("a", {"method": "synth", "size": 3, "fidelity": 1.0},
                {"method": "tree-xy", "size": 300, "fidelity": 0.95}),
            doc("b", {"method": "synth", "size": 10, "fidelity": 0.97},
                {"method": "tree-xy", "error": "failed"})]
    svg = ElementTree.fromstring(fidelity_svg(docs, width=412, height=320))
    circles = svg.findall("{http://www.w3.org/2000/svg}circle")
    titles = [c.find("{http://www.w3.org/2000/svg}title").text for c in circles]
    assert titles == ["synth, a: size 3, fidelity 1.0000", "tree-xy, a: size 300, fidelity 0.9500",
                      "synth, b: size 10, fidelity 0.9700"]
    # log-scaled sizes over three decades on a 352-pixel-wide plot starting at x = 48
    assert float(circles[2].get("cx")) == pytest.approx(48 + 352 / 3, abs=0.05)
    assert float(circles[0].get("cy")) == pytest.approx(36)  # fidelity 1 at the top


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


def test_a_peer_added_to_a_finished_run_runs_alone(tmp_path):
    first = run_benchmark(TASKS[:1], config(), tmp_path, progress=False)
    added = run_benchmark(TASKS[:1], config(peers=("tree-xy",)), tmp_path, progress=False)
    assert [r["method"] for r in added[0]["results"]] == ["synth", "tree-xy"]
    assert added[0]["results"][0] == first[0]["results"][0]  # the engine's row, timings too
    assert added[0]["config"]["peers"] == ["tree-xy"]
    other = run_benchmark(TASKS[:1], config(seed=1, peers=("tree-xy",)), tmp_path,
                          progress=False)  # other settings: the engine runs again
    assert other[0]["results"][0]["seconds"] != first[0]["results"][0]["seconds"]


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


def _tree_on(x: np.ndarray, labels: np.ndarray, depth: int):
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x, labels)


def test_a_tree_is_as_large_as_the_formula_it_writes_in_the_engines_language():
    from benchmarks.peer_sizes import tree_size

    env = parse_domain("grid:20x20").all_inputs()
    x = np.stack([env["x"], env["y"]], axis=1)
    cut = (env["x"] > 5).astype(int)  # `x > 5`: 3 nodes
    assert tree_size(_tree_on(x, cut, 1), [1, 1]) == 3
    # the same cut on a feature of 5 nodes (`(x * y) % 5`, say) is an atom of 7
    assert tree_size(_tree_on(x, cut, 1), [5, 5]) == 7
    corner = ((env["x"] > 5) & (env["y"] > 5)).astype(int)  # `x > 5 and y > 5`: 7 nodes
    assert tree_size(_tree_on(x, corner, 2), [1, 1]) == 7
    # two differing subtrees under a split: `a and L or not a and R`
    xor = ((env["x"] > 5) != (env["y"] > 5)).astype(int)
    assert tree_size(_tree_on(x, xor, 2), [1, 1]) == 3 + 2 * 3 + 3 + 3
    constant = np.ones(len(cut), dtype=int)
    assert tree_size(_tree_on(x, constant, 3), [1, 1]) == 1


def test_a_trees_front_runs_from_the_root_to_the_tree_itself():
    from benchmarks.peer_sizes import tree_front, tree_size
    from benchmarks.peers import split_rows

    env = parse_domain("grid:20x20").all_inputs()
    x = np.stack([env["x"], env["y"]], axis=1)
    labels = (((env["x"] > 5) & (env["y"] > 5)) | (env["x"] > 15)).astype(int)
    fit, hold = split_rows(len(labels), 0)
    front = tree_front({"random_state": 0}, x, labels, fit, hold, [1, 1])
    sizes = [p[0] for p in front]
    assert sizes == sorted(sizes) and sizes[0] == 1
    full = tree_size(_tree_on(x[fit], labels[fit], None), [1, 1])
    assert front[-1][0] == full and front[-1][1] == 1.0
    assert all(0 <= p[1] <= 1 and 0 <= p[2] <= 1 for p in front)


def test_a_genetic_program_counts_each_feature_at_its_size_and_its_comparison():
    from benchmarks.peer_sizes import gplearn_size

    add = object()  # a gplearn function node: one node whatever it is
    assert gplearn_size([add, 0, 1], [1, 4]) == 2 + 1 + 1 + 4
    assert gplearn_size([add, 0, 0.5], [3]) == 2 + 1 + 3 + 1


def test_fidelity_at_equal_size_compares_the_best_programs_no_larger():
    from benchmarks.report import best_within, equal_size_table

    front = [[3, 0.9, 0.8, "a"], [7, 0.95, 0.9, "b"], [11, 0.97, None, "c"]]
    assert best_within(front, 2) is None and best_within(front, 7) == 0.9
    assert best_within(front, 20) == 0.97  # no held-out score: the fit fidelity

    def doc(name, synth, peer):
        return {"task": {"name": name, "atoms": 1},
                "results": [{"method": "synth", **synth}, {"method": "tree", **peer}]}

    docs = [  # the engine ahead at both sizes
        doc("a", {"size": 7, "front": front}, {"size": 15, "front": [[5, 0.8, 0.85],
                                                                     [15, 0.9, 0.88]]}),
        # a larger tree more faithful than the whole front: behind at the tree's size
        doc("b", {"size": 7, "front": front}, {"size": 101, "front": [[9, 0.8, 0.8],
                                                                      [101, 1.0, 0.99]]}),
        # a program as small as the engine's and more faithful: behind at both (a
        # peer without a front is its one program)
        doc("c", {"size": 7, "front": front}, {"size": 5, "fidelity": 0.98,
                                               "fit_fidelity": 0.99, "holdout_fidelity": 0.95})]
    # results without held-out row counts cannot tell a real lead from chance: "-"
    assert "| tree | 3 | 2/3 | 1/3 | - | 1 / 0 / 2 (p = 1) | - | 7 | 15 |" in equal_size_table(docs)
    for d in docs:
        d["results"][0]["holdout_rows"] = 1000
    # a lead of 3 rows in 1,000 is behind, but no paired test at 5% calls it real
    docs.append(doc("d", {"size": 7, "front": [[7, 0.9, 0.9]], "holdout_rows": 1000},
                    {"size": 7, "front": [[7, 0.9, 0.903]]}))
    # over the suite, at the peer's sizes: a wins by 90 rows, b, c, d lose by 20, 150, 3
    assert "| tree | 4 | 2/4 | 1/4 | 2/4 | 1 / 0 / 3 (p = 0.62) | -3 / -83 | 7 | 11 |" \
        in equal_size_table(docs)


def test_a_suite_is_ahead_when_its_wins_at_the_peers_sizes_beat_a_fair_coin():
    from benchmarks.report import equal_size_table

    def doc(ours, theirs):  # both sides' one program of 9 nodes, 1,000 rows held out
        return {"task": {"name": "t", "atoms": 1},
                "results": [{"method": "synth", "size": 9, "holdout_rows": 1000,
                             "front": [[9, ours, ours]]},
                            {"method": "tree", "size": 9, "front": [[9, theirs, theirs]]}]}

    # ten wins by two rows each, one loss by one row and a tie: no single task is a
    # real lead, the suite is
    docs = [doc(0.902, 0.9)] * 10 + [doc(0.9, 0.901), doc(0.9, 0.9)]
    row = "| tree | 12 | 11/12 | 11/12 | 0/12 | 10 / 1 / 1 (p = 0.012) | +19 / +19 | 9 | 9 |"
    assert row in equal_size_table(docs)


def test_a_lead_of_fewer_than_six_rows_is_never_significant():
    from scipy.stats import binomtest

    from benchmarks.report import SIGNIFICANT_LEAD_ROWS

    # McNemar's exact test: the discordant rows split as a fair coin under a tie;
    # the smallest p for a lead of d rows is when every discordant row is the leader's
    def least_p(lead):
        return binomtest(lead, lead).pvalue

    assert least_p(SIGNIFICANT_LEAD_ROWS) < 0.05 <= least_p(SIGNIFICANT_LEAD_ROWS - 1)
    assert all(binomtest(b + lead, 2 * b + lead).pvalue >= least_p(lead)
               for lead in range(1, 8) for b in range(0, 30))


def test_bench_command_writes_results_and_a_table(tmp_path, capsys):
    rc = main(["bench", "--program", "x > 5", "--program", "x + y < 9", "--domain", "grid:15x15",
               "--time-limit", "10", "--max-feature-size", "2", "--max-atoms", "1",
               "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "| p01 |" in out and "`x > 5`" in out
    assert (tmp_path / "results.csv").exists() and (tmp_path / "table.md").exists()
    page = tmp_path / "page.md"
    rc = main(["bench", "--program", "x > 5", "--domain", "grid:15x15", "--time-limit", "10",
               "--max-feature-size", "2", "--max-atoms", "1", "--out", str(tmp_path / "one"),
               "--quiet", "--markdown", str(page)])
    text = page.read_text()
    assert rc == 0 and text.startswith("<!-- bench:one -->\n`synth bench --program 'x > 5' ")
    assert "| p01 |" in text and text.endswith("<!-- /bench:one -->\n")
    rc = main(["bench", "--suite", "grids", "--out", str(tmp_path)])
    assert rc == 1 and "unknown suite 'grids'" in capsys.readouterr().err


def test_ray_executor_gives_the_same_results_as_serial(tmp_path):
    """On a local Ray instance (ray is a test dependency: this runs in CI)."""
    from benchmarks.executors import RayExecutor

    serial = run_benchmark(TASKS[:2], config(), tmp_path / "serial", progress=False)
    ray = RayExecutor("local", 2)
    try:
        remote = run_benchmark(TASKS[:2], config(), tmp_path / "ray", executor=ray,
                               progress=False)
    finally:
        ray.close()
    assert _outcome(serial) == _outcome(remote)


# -- the images suite ---------------------------------------------------------------------


def test_images_suite_is_graded_and_covers_the_image_features():
    from benchmarks.suites import IMAGE_KINDS, IMAGES_SUITE

    assert get_suite("images") is IMAGES_SUITE and len(IMAGES_SUITE) >= 12
    assert {t.domain for t in IMAGES_SUITE} == {"mnist"}
    assert sorted({t.atoms for t in IMAGES_SUITE}) == [1, 2, 3]
    kinds = {k for t in IMAGES_SUITE for k in t.kinds}
    assert kinds == set(IMAGE_KINDS)
    assert len({t.program for t in IMAGES_SUITE}) == len(IMAGES_SUITE)


def test_images_suite_programs_split_the_mnist_test_set():
    from tests.helpers import data_file

    data_file("mnist", "t10k-images-idx3-ubyte.gz")
    from benchmarks.suites import IMAGES_SUITE
    from synth.image_search import load_domain_images

    images, classes = load_domain_images("mnist")
    behaviours = set()
    for task in IMAGES_SUITE:
        labels = task.hidden().evaluate(images, classes)
        assert 0.04 < labels.mean() < 0.96, task.name
        behaviours.add(labels.tobytes())
    assert len(behaviours) == len(IMAGES_SUITE)


def test_hidden_image_programs_are_numpy_expressions_over_one_image():
    from benchmarks.images_suite import class_means, parse_image_program

    images = np.zeros((4, 6, 6))
    images[1, :3] = 1.0
    images[2, 3:] = 1.0
    images[3, 2:4, 2:4] = 1.0
    program = parse_image_program("image[:3].sum() > image[3:].sum() or image.sum() == 4")
    assert program.atoms == 2
    assert program.evaluate(images).tolist() == [0, 1, 0, 1]
    holes = parse_image_program("ndimage.label(np.pad(image <= 0.5, 1, "
                                "constant_values=True))[1] - 1 >= 1")
    ring = np.ones((1, 6, 6))
    ring[0, 2:4, 2:4] = 0.0
    assert holes.evaluate(np.concatenate([images, ring])).tolist() == [0, 0, 0, 0, 1]
    means = class_means(images, np.array([0, 1, 1, 0]))
    assert means.shape == (10, 6, 6) and np.array_equal(means[1], images[1:3].mean(axis=0))
    near_one = parse_image_program("(image * MEAN[1]).sum() > 4")
    assert near_one.evaluate(images, np.array([0, 1, 1, 0])).tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError, match="MEAN needs the digit classes"):
        near_one.evaluate(images)


@pytest.mark.parametrize("source, message", [
    ("image.sum() >", "cannot parse hidden image program"),
    ("x > 3", "unknown name 'x'"),
    ("image.__class__ is None", "attribute '__class__' is not allowed"),
    ("np.load('f.npy').sum() > 0", "attribute 'load' is not allowed"),
    ("open('f') == 1", "unknown name 'open'"),
    ("[p for p in image] == 1", "unsupported syntax ListComp"),
    ("(lambda: 1)() == 1", "unsupported syntax Lambda"),
    ("", "is empty"),
])
def test_bad_hidden_image_programs_are_clear_errors(source, message):
    from benchmarks.images_suite import parse_image_program

    with pytest.raises(ValueError, match=message):
        parse_image_program(source)


def test_image_programs_that_fail_or_do_not_decide_say_so(tmp_path):
    from benchmarks.images_suite import load_image_program, parse_image_program

    images = np.random.default_rng(0).random((3, 5, 5))
    with pytest.raises(ValueError, match="must return a truth value"):
        parse_image_program("image.sum()").evaluate(images)
    with pytest.raises(ValueError, match="failed on image 0: IndexError"):
        parse_image_program("image[9, 9] > 0").evaluate(images)
    file = tmp_path / "bright.py"
    file.write_text("def label(image):\n    return image.mean() > 0.5\n")
    program = load_image_program(str(file))
    assert program.atoms == 0
    assert program.evaluate(images).tolist() == [int(im.mean() > 0.5) for im in images]


def test_tiny_images_suite_runs_end_to_end_from_cnns(tmp_path):
    """Two image tasks on 300 MNIST images, CNNs trained 2 epochs: the whole pipeline
    (training, caching, the engine, a peer, the tables) in well under a minute."""
    import time

    from tests.helpers import data_file

    data_file("mnist", "t10k-images-idx3-ubyte.gz")
    from dataclasses import replace

    from benchmarks.images_suite import ImageBenchSettings
    from benchmarks.suites import IMAGES_SUITE

    tasks = [t for t in IMAGES_SUITE if t.name in ("i1-ink", "i1-holes")]
    settings = ImageBenchSettings(max_images=300)
    settings = replace(settings, train=replace(settings.train, epochs=2, decay_epochs=1))
    cfg = BenchConfig(source="network", time_limit=8.0, peers=("tree-pixels",),
                      images=settings, cache_dir=str(tmp_path / "cache"))
    start = time.perf_counter()
    docs = run_benchmark(tasks, cfg, tmp_path / "out", progress=False)
    assert time.perf_counter() - start < 60
    assert [d["task"]["name"] for d in docs] == ["i1-ink", "i1-holes"]
    for doc in docs:
        assert "error" not in doc, doc.get("error")
        assert doc["task"]["domain"] == "mnist" and doc["config"]["images"]["max_images"] == 300
        assert doc["network"]["train_rows"] == 150 and 0 <= doc["network"]["oracle_agreement"]
        synth, tree = doc["results"]
        assert (synth["method"], tree["method"]) == ("synth", "tree-pixels")
        for r in (synth, tree):
            assert r["exact"] == (r["agreement"] >= 0.995) and 0 <= r["fidelity"] <= 1
            assert r["size"] >= 1 and r["seconds"] > 0
        assert synth["size"] <= 20 and "def label(image):" in synth["python"]
    assert len(list((tmp_path / "cache" / "networks").glob("casper-cnn-*.pt"))) == 2
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| i1-ink |" in table and "tree-pixels" in table
    with open(tmp_path / "out" / "results.csv") as fh:
        assert {r["method"] for r in csv.DictReader(fh)} == {"synth", "tree-pixels"}


def test_image_training_split_and_cache_key():
    from benchmarks.train_cli import train_split

    domain = parse_domain(SMALL)
    assert np.array_equal(train_split(domain.size, 3), train_split(domain, 3))
    assert len(train_split(300, 0)) == 150


def test_bench_command_checks_peers_against_the_suite(tmp_path, capsys):
    rc = main(["bench", "--suite", "images", "--peers", "tree-xy", "--out", str(tmp_path)])
    assert rc == 1
    assert "peers ['tree-xy'] do not run on the selected tasks; choose from tree-pixels" in \
        capsys.readouterr().err
    rc = main(["bench", "--program", "x > 1", "--peers", "tree-pixels", "--out", str(tmp_path)])
    assert rc == 1 and "choose from tree-xy" in capsys.readouterr().err
