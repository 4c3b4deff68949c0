"""Active queries: exact recovery from a few percent of a grid, honest query counts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dsl.domains import GridDomain
from dsl.parse import parse
from oracles.table import TableOracle
from synth.active import ActiveSynthesizer, points, sample_flat
from synth.cli import main
from synth.search import Synthesizer


class CountingOracle:
    """A hidden program served point by point, counting every answered row."""

    feature_names: tuple[str, ...] = ()

    def __init__(self, program, names=("x", "y")) -> None:
        self.program = program
        self.input_names = tuple(names)
        self.queries = 0
        self.asked: list[np.ndarray] = []

    def labels(self, inputs):
        n = len(inputs[self.input_names[0]])
        self.queries += n
        self.asked.append(np.stack([np.asarray(inputs[k]) for k in self.input_names], axis=1))
        return self.program.evaluate(dict(inputs)).astype(np.int64)

    def logits(self, inputs):
        return None

    def features(self, inputs, names):
        raise ValueError("no internals")


def _fast(time_limit: float = 4.0) -> Synthesizer:
    return Synthesizer(time_limit=time_limit, max_feature_size=3)


@pytest.fixture(scope="module")
def grid():
    domain = GridDomain((200, 200))
    return domain, domain.all_inputs()


def test_recovers_a_linear_threshold_from_few_queries(grid):
    domain, env = grid
    truth = (env["x"] + 2 * env["y"] > 250).astype(np.int64)
    oracle = TableOracle(truth.reshape(200, 200), domain)
    active = ActiveSynthesizer(_fast(), initial=300, batch=100, budget=2000, seed=0)
    active.fit(domain, oracle)
    assert np.array_equal(active.predict(env), truth), str(active.best_.program)
    assert active.queries_ <= 0.05 * domain.size
    assert active.queries_ == oracle.queries == len(active.queried_)
    assert active.result_.stats.queries == active.queries_
    assert len(np.unique(active.queried_)) == len(active.queried_)  # never asked twice
    assert active.best_.fidelity == 1.0


def test_recovers_a_disjunction_through_a_counting_oracle(grid):
    domain, env = grid
    hidden = parse("abs(x - y) < 23 or x * y > 21000")
    truth = hidden.evaluate(env).astype(np.int64)
    oracle = CountingOracle(hidden)
    active = ActiveSynthesizer(_fast(5.0), initial=400, batch=150, budget=2000, seed=1)
    active.fit(domain, oracle)
    assert np.array_equal(active.predict(env), truth), str(active.best_.program)
    asked = np.concatenate(oracle.asked)
    assert active.queries_ == oracle.queries == len(asked) <= 0.05 * domain.size
    assert len(np.unique(asked, axis=0)) == len(asked)
    # the labels it kept are the oracle's answers on the points it asked about
    kept = points(domain, active.queried_)
    assert np.array_equal(active.labels_, hidden.evaluate(kept).astype(np.int64))


def test_the_budget_is_a_hard_limit_and_json_reports_the_queries(grid):
    domain, env = grid
    truth = ((env["x"] > 120) != (env["y"] < 70)).astype(np.int64)
    oracle = TableOracle(truth.reshape(200, 200), domain)
    before = oracle.queries = 17  # the count is read as a difference
    active = ActiveSynthesizer(_fast(2.0), initial=150, batch=100, budget=420, patience=None,
                               seed=2).fit(domain, oracle)
    assert active.queries_ == oracle.queries - before == 420
    assert [r.queried for r in active.history_] == [250, 350, 420]
    data = active.to_json()
    assert data["active"]["queries"] == 420 and data["active"]["stopped"] == "budget"
    assert data["data"]["domain"] == "grid:200x200"
    json.dumps(data)  # plain JSON


def test_sample_flat_never_materialises_a_huge_grid():
    rng = np.random.default_rng(0)
    huge = GridDomain((10**6, 10**6))
    first = sample_flat(huge, 5000, rng)
    assert len(np.unique(first)) == 5000 and first.min() >= 0 and first.max() < huge.size
    more = sample_flat(huge, 5000, rng, exclude=first)
    assert not np.isin(more, first).any()
    small = GridDomain((10, 10))
    taken = np.arange(0, 100, 2)
    rest = sample_flat(small, 1000, rng, exclude=taken)
    assert np.array_equal(rest, np.arange(1, 100, 2))  # everything that is left, once
    env = points(small, np.array([0, 13, 99]))
    assert env["x"].tolist() == [0, 1, 9] and env["y"].tolist() == [0, 3, 9]


def test_active_command_writes_json(tmp_path, capsys):
    domain = GridDomain((60, 60))
    env = domain.all_inputs()
    path = tmp_path / "labels.npy"
    np.save(path, (env["x"] * 2 - env["y"] > 30).reshape(60, 60).astype(np.int64))
    out = tmp_path / "active.json"
    code = main(["active", "--domain", "grid:60x60", "--labels", str(path), "--query-budget",
                 "500", "--initial", "200", "--batch", "100", "--time-limit", "3",
                 "--max-feature-size", "4", "--json", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "oracle queries" in printed and "def label(x, y):" in printed
    data = json.loads(out.read_text())
    assert data["active"]["queries"] <= 500
    assert data["best"]["fidelity"] == 1.0


def test_undetermined_points_are_where_a_pivotal_threshold_is_unpinned():
    from synth.active import _undetermined
    program = parse("x > 178 and (x + y) % 3 == 0")
    queried = {"x": np.array([100, 170, 190, 250, 175, 176]),
               "y": np.array([2, 1, 2, 2, 0, 0])}  # (x + y) % 3: 0, 0, 0, 0, 1, 2
    pool_x, pool_y = np.meshgrid(np.arange(300), np.arange(3), indexing="ij")
    pool = {"x": pool_x.ravel(), "y": pool_y.ravel()}
    labels = program.evaluate(queried)
    chosen = _undetermined(program, pool, queried, labels, np.random.default_rng(0))
    x, y = pool["x"][chosen], pool["y"][chosen]
    # pivotal queried points bound the threshold to (170, 190): x = 175, 176 are
    # not pivotal (the residue atom is False there) and bound nothing
    expected = {(a, b) for a in range(171, 190) for b in range(3) if (a + b) % 3 == 0}
    assert set(zip(x.tolist(), y.tolist())) == expected
    assert len(chosen) == len(set(chosen.tolist()))




class _SlowSearch:
    """A stand-in for the search that always spends its whole limit and finds only
    ``x > 50`` (wrong for labels that are not), recording the limits it was given."""

    complexity_penalty = 0.001

    def __init__(self, limits: list[float]) -> None:
        self.time_limit, self.holdout, self.seed, self.limits = 2.0, 0.0, 0, limits

    def fit(self, env, labels, input_types=None):
        from synth.results import Candidate, SearchResult, SearchStats
        self.limits.append(self.time_limit)
        program = parse("x > 50")
        fidelity = float((program.evaluate(env) == labels).mean())
        best = Candidate.of(program, ["x", "y"], fidelity, None)
        stats = SearchStats(1, 1, self.time_limit, 1, 1, len(labels))
        self.result_ = SearchResult(best, (best,), stats, {})
        return self


def test_a_refit_cut_short_makes_the_next_one_longer_up_to_a_cap():
    from synth.active import MAX_ESCALATION
    domain = GridDomain((100, 100))
    env = domain.all_inputs()
    oracle = TableOracle(((env["x"] + env["y"]) % 3 == 0).reshape(100, 100), domain)
    limits: list[float] = []
    ActiveSynthesizer(_SlowSearch(limits), initial=200, batch=50, budget=600, rounds=8,
                      patience=None).fit(domain, oracle)
    assert limits[:5] == [2.0, 4.0, 8.0, 16.0, 16.0] and max(limits) == MAX_ESCALATION * 2.0
    limits.clear()
    ActiveSynthesizer(_SlowSearch(limits), initial=200, batch=50, budget=400, rounds=4,
                      patience=None, escalation=1.0).fit(domain, oracle)
    assert set(limits) == {2.0}
    with pytest.raises(ValueError, match="escalation"):
        ActiveSynthesizer(_SlowSearch([]), escalation=0.5).fit(domain, oracle)


def test_the_lines_through_a_mistake_find_a_thin_atom():
    """``x > 30 and x != y`` on 120x120: the diagonal is 89 of 14,400 points, wrong
    for a program without ``x != y``; the queries around a mistake land on it."""
    from synth.active import _line_directions
    assert _line_directions(2) == [(0, 1), (1, -1), (1, 0), (1, 1)]
    domain = GridDomain((120, 120))
    env = domain.all_inputs()
    truth = (env["x"] > 30) & (env["x"] != env["y"])
    active = ActiveSynthesizer()  # its state after a round, set by hand
    active.domain_, active._expanded = domain, set()
    active.queried_ = np.array([50 * 120 + 50, 10 * 120 + 90])  # (50, 50) and (10, 90)
    active.labels_ = truth.ravel()[active.queried_].astype(np.int64)
    active.best_ = type("Best", (), {"program": parse("x > 30")})()  # wrong at (50, 50) only
    around = active._around_mistakes(np.random.default_rng(0))
    x, y = np.unravel_index(around, (120, 120))
    on_diagonal = x == y
    assert on_diagonal.sum() >= 10 and set(zip(x[on_diagonal], y[on_diagonal])) <= {
        (50 + d, 50 + d) for d in range(-64, 65)}
    assert active._expanded == {50 * 120 + 50}  # each mistake is expanded once
    assert len(active._around_mistakes(np.random.default_rng(0))) == 0
