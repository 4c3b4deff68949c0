"""Answer factors: one-number tables read from a network's answers on a grid."""
from __future__ import annotations

import numpy as np
import pytest

from oracles.answer_factors import answer_factors, impute_low_rank, known_mask
from synth.search import Synthesizer, holdout_split


def _corr(a, b) -> float:
    return abs(float(np.corrcoef(a, b)[0, 1]))


def test_a_table_that_is_a_product_of_row_and_column_classes_has_them_as_first_factors():
    rng = np.random.default_rng(0)
    rows, cols = rng.random(40) < 0.4, rng.random(30) < 0.6
    labels = (rows[:, None] & cols[None, :]).ravel()
    tables = {t.name: t for t in answer_factors(labels, (40, 30), k=2)}
    assert set(tables) == {"net_x_pc0", "net_x_pc1", "net_y_pc0", "net_y_pc1"}
    assert _corr(tables["net_x_pc0"].values, rows) == pytest.approx(1.0)
    assert _corr(tables["net_y_pc0"].values, cols) == pytest.approx(1.0)
    assert tables["net_x_pc0"].inputs == ("x",) and tables["net_x_pc0"].share > 0.99


def test_held_out_answers_are_never_read():
    rng = np.random.default_rng(1)
    labels = rng.random(25 * 20) < 0.5
    held = rng.choice(labels.size, size=100, replace=False)
    known = known_mask(labels.size, held)
    flipped = labels.copy()
    flipped[held] = ~flipped[held]
    for a, b in zip(answer_factors(labels, (25, 20), k=3, known=known),
                    answer_factors(flipped, (25, 20), k=3, known=known)):
        np.testing.assert_array_equal(a.values, b.values)


def test_imputation_fills_a_low_rank_table_and_keeps_the_known_cells():
    rng = np.random.default_rng(2)
    table = np.outer(rng.normal(size=30), rng.normal(size=20)) + 3.0
    known = rng.random(table.shape) < 0.8
    filled = impute_low_rank(table, known, rank=1, iterations=200)
    np.testing.assert_array_equal(filled[known], table[known])
    assert np.abs(filled - table)[~known].max() < 1e-3


def test_bad_answer_tables_are_clear_errors():
    with pytest.raises(ValueError, match="need 12 labels for a 3 x 4 grid"):
        answer_factors(np.zeros(11), (3, 4))
    with pytest.raises(ValueError, match="finite"):
        answer_factors(np.full(12, np.nan), (3, 4))
    with pytest.raises(ValueError, match="no known cells"):
        impute_low_rank(np.zeros((3, 4)), np.zeros((3, 4), dtype=bool), rank=1)


def test_the_search_holds_out_the_rows_holdout_split_names():
    x = np.arange(200)
    s = Synthesizer(time_limit=1.0, holdout=0.25, seed=7, max_atoms=1).fit({"x": x}, x > 90)
    held, fit = holdout_split(200, 0.25, np.random.default_rng(7))
    np.testing.assert_array_equal(s.holdout_rows_, held)
    assert len(held) == 50 and set(held).isdisjoint(fit) and len(fit) == 150
