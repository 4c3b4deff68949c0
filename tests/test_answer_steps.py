"""Answer steps: each row of an answer table as its best step function."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracles.answer_factors import known_mask
from oracles.answer_steps import answer_steps, step_fit, step_values


def _rows_of_runs(rng, rows: int, cols: int, changes: int) -> tuple[np.ndarray, np.ndarray]:
    """A 0/1 table whose rows start at random and change at ``changes`` random places."""
    start = rng.integers(0, 2, rows)
    cuts = np.sort(rng.choice(np.arange(1, cols), size=(rows, changes)), axis=1) - 0.5
    return step_values(start, cuts, cols), cuts


def _brute_force_errors(row: np.ndarray, changes: int) -> int:
    """Fewest disagreements of any step function with at most ``changes`` changes."""
    n, best = len(row), len(row)
    for start in (0, 1):
        for k in range(changes + 1):
            for cut in (np.array(c) for c in np.ndindex(*([n] * k))):
                if k and (np.diff(cut) <= 0).any():
                    continue
                fit = step_values(np.array([start]), cut[None, :] - 0.5, n)[0]
                best = min(best, int((fit != row).sum()))
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=9), st.integers(0, 2))
def test_the_fit_disagrees_with_a_row_as_little_as_any_step_function(row, changes):
    row = np.array(row)
    start, cuts = step_fit(row[None, :], np.ones((1, row.size), dtype=bool), changes)
    fit = step_values(start, cuts, row.size)[0]
    assert int((fit != row).sum()) == _brute_force_errors(row, changes)


def test_scattered_mistakes_are_dropped_and_the_runs_kept():
    rng = np.random.default_rng(0)
    clean, cuts = _rows_of_runs(rng, 60, 80, 2)
    noisy = clean ^ (rng.random(clean.shape) < 0.03)
    start, found = step_fit(noisy, np.ones(noisy.shape, dtype=bool), 2)
    assert (step_values(start, found, 80) == clean).mean() > 0.995
    assert (noisy == clean).mean() < 0.98


def test_a_change_among_unread_cells_falls_halfway_between_the_read_ones():
    row = np.array([[0, 0, 0, 1, 1, 1, 1, 1]])
    known = np.array([[1, 1, 0, 0, 0, 1, 1, 1]], dtype=bool)
    start, cuts = step_fit(row, known, 1)
    assert start[0] == 0 and cuts[0, 0] == pytest.approx(3.0)  # between cells 1 and 5


def test_a_confident_answer_outweighs_several_unsure_ones():
    row, known = np.array([[1, 1, 0, 0, 0]]), np.ones((1, 5), dtype=bool)
    assert step_fit(row, known, 0)[0][0] == 0
    assert step_fit(row, known, 0, weights=np.array([[5.0, 5.0, 1.0, 1.0, 1.0]]))[0][0] == 1


def test_tables_name_each_input_and_read_no_held_out_cell():
    rng = np.random.default_rng(1)
    clean, _ = _rows_of_runs(rng, 30, 25, 2)
    labels = clean.ravel()
    held = rng.choice(labels.size, size=150, replace=False)
    known = known_mask(labels.size, held)
    flipped = labels.copy()
    flipped[held] ^= 1
    tables = answer_steps(labels, (30, 25), 2, known=known)
    assert [t.name for t in tables] == ["net_x_start", "net_x_cut0", "net_x_cut1",
                                        "net_y_start", "net_y_cut0", "net_y_cut1"]
    assert tables[0].inputs == ("x",) and tables[3].inputs == ("y",)
    assert tables[0].share == 1.0  # every row is a step function of two changes
    for a, b in zip(tables, answer_steps(flipped, (30, 25), 2, known=known)):
        np.testing.assert_array_equal(a.values, b.values)


def test_bad_answer_tables_are_clear_errors():
    with pytest.raises(ValueError, match="need 12 labels for a 3 x 4 grid"):
        answer_steps(np.zeros(11), (3, 4))
    with pytest.raises(ValueError, match="0/1 labels"):
        answer_steps(np.full(12, 2), (3, 4))
    with pytest.raises(ValueError, match="changes must be >= 0"):
        step_fit(np.zeros((2, 2)), np.ones((2, 2), dtype=bool), -1)
    with pytest.raises(ValueError, match="12 finite weights"):
        answer_steps(np.zeros(12), (3, 4), weights=np.full(12, np.nan))
