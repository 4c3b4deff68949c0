"""A network's confidence as the weight of its labels."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from synth.confidence import FLOOR, confidence_weights, logit_margin


def test_margin_is_the_distance_of_the_logits_from_the_decision():
    two = np.array([[0.0, 3.0], [2.0, -1.0], [1.0, 1.0]])
    assert logit_margin(two).tolist() == [3.0, 3.0, 0.0]
    assert logit_margin(np.array([[-2.5], [0.5]])).tolist() == [2.5, 0.5]


@pytest.mark.parametrize("logits, message", [
    (np.zeros((4, 3)), "shape"),
    (np.zeros(4), "shape"),
    (np.array([[0.0, np.nan]]), "NaN"),
])
def test_bad_logits_get_a_clear_error(logits, message):
    with pytest.raises(ValueError, match=message):
        logit_margin(logits)


def test_doubtful_labels_count_in_proportion_to_their_margin():
    margin = np.arange(1, 101, dtype=float)  # the 0.1 quantile is 10.9
    w = confidence_weights(margin, quantile=0.1)
    assert (w[margin >= 10.9] == 1.0).all()
    assert np.allclose(w[:10], np.maximum(margin[:10] / 10.9, FLOOR))
    assert confidence_weights(np.zeros(5)).tolist() == [1.0] * 5  # no margin: no preference


@given(arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e6, 1e6)))
def test_weights_are_positive_at_most_one_and_ordered_like_the_margins(margin):
    w = confidence_weights(margin)
    assert ((w >= FLOOR) & (w <= 1.0)).all()
    order = np.argsort(np.abs(margin), kind="stable")
    assert (np.diff(w[order]) >= 0).all()


def test_quantile_must_be_a_proper_fraction():
    with pytest.raises(ValueError, match="quantile"):
        confidence_weights(np.ones(3), quantile=1.0)
