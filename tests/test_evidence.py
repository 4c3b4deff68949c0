"""Evidence: linear readouts of features from layers, and evidence-aware ranking.

Two programs that fit the network equally well are told apart by whether the
network represents and uses their features (hand-built networks from
tests/test_causal.py: one gates ``x > 50`` and never reads ``y``).
"""
from __future__ import annotations

import numpy as np
import pytest

from dsl.images import Template
from dsl.program import apply, const
from synth.evidence import (decodability, decode_layer, feature_readouts, fit_readout,
                            program_features, split_rows)
from synth.ranking import (Ranking, choose_grid_program, choose_image_program, contenders,
                           evidence_score, rerank)
from synth.results import Candidate
from tests.test_causal import DOMAIN, X, Y, above, gate_oracle, image_setup, stroke


def agreeing_points() -> dict:
    """The grid points where ``x > 50`` and ``y > 50`` agree: both programs fit them."""
    env = DOMAIN.all_inputs()
    same = (env["x"] > 50) == (env["y"] > 50)
    return {k: v[same] for k, v in env.items()}


def candidate(program, fidelity: float = 1.0) -> Candidate:
    return Candidate.of(program, ["x", "y"], fidelity, fidelity)


# -- readouts ----------------------------------------------------------------------------

def test_a_readout_recovers_a_linear_map_in_raw_units():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(400, 6)) * [1, 10, 0.1, 1, 1, 1] + 3.0
    acts[:, 5] = 2.0  # a dead unit
    target = 2.0 * acts[:, 1] - 30.0 * acts[:, 2] + 7.0
    train, test = split_rows(400, 0.5, 0)
    weights, bias = fit_readout(acts, target, train)
    assert weights.shape == (6, 1) and weights[5, 0] == 0.0
    assert np.allclose(acts[test] @ weights[:, 0] + bias[0], target[test], atol=0.05)
    assert np.allclose(decode_layer(acts, target[:, None], train, test)[:, 0],
                       acts[test] @ weights[:, 0] + bias[0])


def test_feature_readouts_name_the_layer_that_carries_a_feature():
    oracle = gate_oracle()
    env = agreeing_points()
    train, test = split_rows(len(env["x"]), 0.5, 0)
    readouts = feature_readouts(oracle, env, [X, Y], ["hidden", "out"], train, test)
    assert readouts["x", "hidden"].r2 > 0.999
    assert readouts["y", "hidden"].r2 < 0.8  # only through its correlation with x here
    assert readouts["x", "hidden"].weights.shape == (3,)
    assert readouts["x", "hidden"].encoding[0] == pytest.approx(1.0)  # the unit that is x
    with pytest.raises(ValueError, match="no features"):
        feature_readouts(oracle, env, [], ["hidden"], train, test)


def test_a_numeric_input_compared_directly_is_a_feature():
    assert program_features(above(X)) == [X]
    s = apply("add", X, Y)
    assert program_features(apply("and_", apply("gt", s, const(3)), above(X))) == [s, X]


# -- the evidence score and the ranking rule ------------------------------------------------

def test_the_evidence_score_is_the_worst_feature_and_the_counterfactual_fidelity():
    program = apply("and_", above(X), above(Y))
    decoded = {"features": [{"feature": "x", "r2": {"a": 0.2, "b": 0.9}},
                            {"feature": "y", "r2": {"a": 0.6, "b": -0.5}},
                            {"feature": "ink(image)", "r2": {"a": 0.0, "b": 0.0}}]}
    assert evidence_score(program, decoded) == pytest.approx(0.6)
    assert evidence_score(program, decoded, 0.8) == pytest.approx(0.7)
    assert evidence_score(program, None, 0.25) == 0.25
    assert evidence_score(program) is None


def test_evidence_breaks_ties_but_never_outweighs_fidelity():
    x, y = candidate(above(X)), candidate(above(Y))
    ranking = rerank([y, x], 5e-4, {x: 0.9, y: 0.3})
    assert [r.candidate for r in ranking.entries] == [x, y]
    assert ranking.engine_choice == y  # the first of two equals, as the engine picks
    data = ranking.to_json()
    assert data["chosen"] == "x > 50" and data["changed"] is True
    assert data["candidates"][0]["evidence_score"] == 0.9
    better_y = candidate(above(Y), fidelity=1.0)
    worse_x = candidate(above(X), fidelity=0.99)
    assert rerank([worse_x, better_y], 5e-4, {worse_x: 1.0, better_y: 0.0}).chosen.candidate \
        == better_y
    # an unscored tie ranks after a scored one; within equal evidence, the smaller first
    big = candidate(apply("gt", apply("add", X, const(0)), const(50)))
    assert [r.candidate for r in rerank([big, y, x], 0.0, {y: 0.5}).entries] == [y, x, big]
    assert contenders([x, worse_x], 5e-4, tolerance=1e-3) == [x]
    with pytest.raises(ValueError, match="non-negative"):
        rerank([x], 0.0, {}, tolerance=-1)
    with pytest.raises(ValueError, match="no candidates"):
        contenders([], 0.0)


# -- the network decides between equally fitting programs ---------------------------------

def test_the_program_whose_feature_the_network_represents_ranks_first():
    oracle = gate_oracle()
    env = agreeing_points()
    x, y = candidate(above(X)), candidate(above(Y))
    for c in (x, y):  # equal fits on the queries
        assert (c.program.evaluate(env) == oracle.labels(env)).all()
    decoded = {c: decodability(oracle, env, c.program, max_rows=1200) for c in (x, y)}
    scores = {c: evidence_score(c.program, decoded[c]) for c in (x, y)}
    assert scores[x] > 0.99 and scores[y] < 0.8
    assert rerank([y, x], 5e-4, scores).chosen.candidate == x


def test_grid_choice_by_counterfactual_fidelity():
    x, y = candidate(above(X)), candidate(above(Y))
    ranking, report = choose_grid_program([y, x], gate_oracle(), DOMAIN, 5e-4, network="gate")
    assert isinstance(ranking, Ranking) and ranking.chosen.candidate == x
    assert ranking.chosen.details == {"counterfactual_fidelity": 1.0}
    assert report.network == "gate" and report.fidelity == 1.0
    # moving y never moves the network: it agrees with y > 50 only where x already did
    assert ranking.entries[1].evidence == 0.5


def test_image_choice_adds_causal_evidence_to_the_report():
    from synth.image_search import recover_image_program
    images, threshold, oracle = image_setup(stroke(), n=400)
    labels = oracle.labels({"image": images})
    hint = Template.from_array(stroke(), "hint", source="test")
    rep = recover_image_program(images, labels, oracle=oracle, user_templates=[hint],
                                time_limit=4, pca=1, refine=0)
    chosen, ranking = choose_image_program(rep, images, labels, oracle, max_images=80,
                                           patch_pairs=40, network="dotnet")
    evidence = chosen.evidence
    assert ranking.chosen.candidate == chosen.best
    assert 0.0 <= evidence["evidence_score"] <= 1.0
    kinds = [r["kind"] for r in evidence["causal"]]
    assert kinds == ["image edits", "patching"]
    assert evidence["causal"][0]["counterfactual_fidelity"] > 0.9
    assert evidence["features"] and "fidelity_all_queries" in evidence
    with pytest.raises(ValueError, match="labels must have shape"):
        choose_image_program(rep, images, labels[:3], oracle)
