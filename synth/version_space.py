"""Which coefficients of a comparison the labels queried so far still allow.

An atom ``L op R`` of a program (``op`` one of < <= > >=) is decided by the
sign of its margin ``L - R``, and only where it is *pivotal* -- setting it True
or False changes the program's answer -- does a label say anything about it.
A numeric constant ``k`` inside the atom that enters the margin affinely
(``margin = m0 + (k - k0) * g``, checked numerically; constants under ``%`` or
``//`` are moduli, not coefficients) can be moved together with an offset
``t`` added to the margin: the labels of the queried pivotal points confine
``(k, t)`` to a convex polygon (one half-plane per point).  Its extreme points
are rival atoms that agree with every answer so far; an unqueried pivotal
point where a rival and the atom disagree has a label the answers do not
imply.  A coefficient off in its fourth digit (``y ** 2 < 722.5 * x`` for
``y < 26.8792 * sqrt(x)`` on a 1000x1000 grid) is wrong on a handful of a
million points that no boundary or random sample finds; these points do
(:func:`coefficient_rivals`).

The same polygon, built from every label, *polishes* a program whose atom is
wrong on a few of them: the simplest coefficient inside it, with the
threshold refitted beside it, fits them all (:func:`polish`).  A search fits
a ratio to a few digits; the labels of a large grid can ask for five.  A
quotient against a constant (``y ** 3 // x ** 2 > 356``) is a line with a
whole ratio in disguise and is treated as that line (:func:`quotient_as_line`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog
from scipy.spatial import HalfspaceIntersection, QhullError

from dsl.primitives import ORDERED
from dsl.program import Apply, Const, Program, apply, const, constant_paths, node_at, \
    replace_at, substitute
from dsl.types import INT, REAL
from synth.numbers import simplest_in

_MODULAR = frozenset({"mod", "floordiv"})
_FLIPPED = {"lt": "gt", "gt": "lt", "le": "ge", "ge": "le"}  # c op x  <=>  x flipped c


def pivotal(program: Program, atom: Program, env: Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows where the program's answer follows ``atom``'s truth."""
    on = np.asarray(substitute(program, atom, const(True)).evaluate(env), dtype=bool)
    off = np.asarray(substitute(program, atom, const(False)).evaluate(env), dtype=bool)
    return on != off


def is_comparison(node: Program) -> bool:
    return isinstance(node, Apply) and node.primitive.name in ORDERED


def coefficient_paths(atom: Apply) -> list[tuple]:
    """Paths of the atom's numeric constants that are not moduli (under % or //) and
    not the atom's own threshold (a side that is a constant moves like the offset)."""
    def modular(path: tuple) -> bool:
        return any(isinstance(n, Apply) and n.primitive.name in _MODULAR
                   for n in (node_at(atom, path[:i]) for i in range(len(path))))
    return [p for p in constant_paths(atom) if len(p) > 1 and not modular(p)]


def _margin(atom: Apply, env: Mapping[str, np.ndarray]) -> np.ndarray:
    left, right = (np.asarray(a.evaluate(env), dtype=float) for a in atom.args)
    return np.broadcast_to(left - right, np.shape(next(iter(env.values())))).astype(float)


def _step(k: Const) -> float:
    return 1 if k.type is INT else (abs(float(k.value)) or 1.0) / 2


def _direction(atom: Apply, path: tuple, envs: list[Mapping[str, np.ndarray]]):
    """How the margin moves per step (:func:`_step`) of the constant at ``path`` on
    each env, or None where it does not move affinely (or does not move at all)."""
    k = node_at(atom, path)
    step = _step(k)

    def moved(n: int) -> Apply:
        value = int(k.value) + n * step if k.type is INT else float(k.value) + n * step
        return replace_at(atom, path, Const(value, k.type))
    once, twice = moved(1), moved(2)
    out = []
    for env in envs:
        m0, m1, m2 = _margin(atom, env), _margin(once, env), _margin(twice, env)
        g = m1 - m0
        scale = np.abs(m0).max(initial=0.0) + np.abs(g).max(initial=0.0) + 1.0
        if not (np.all(np.isfinite(g)) and np.allclose(m2 - m1, g, rtol=1e-9,
                                                        atol=1e-9 * scale)):
            return None
        out.append(g)
    if not np.any(out[0]):
        return None
    return out


def quotient_as_line(atom: Apply) -> Apply | None:
    """``a // b < c`` as the line ``a < c * b`` it equals wherever ``b > 0`` (and
    likewise for the other comparisons, a constant on either side); None for any
    other atom.  A quotient against an integer hides a ratio that can only be
    whole: as a line (of the same size), the ratio is a coefficient like any other."""
    name, (left, right) = atom.primitive.name, atom.args
    if isinstance(left, Const):
        name, left, right = _FLIPPED[name], right, left
    if not (isinstance(right, Const) and right.type is INT and isinstance(left, Apply)
            and left.primitive.name == "floordiv"):
        return None
    a, b = left.args
    c = int(right.value)
    # a // b < c  <=>  a < c*b;  a // b <= c  <=>  a < (c+1)*b;  a // b > c  <=>  a >= (c+1)*b
    ratio, op = {"lt": (c, "lt"), "le": (c + 1, "lt"), "gt": (c + 1, "ge"),
                 "ge": (c, "ge")}[name]
    return apply(op, a, apply("mul", Const(ratio, INT), b))


def _asked(program: Program, atom: Apply, env: Mapping[str, np.ndarray], labels: np.ndarray):
    """The rows where ``atom`` decides the program's answer, those rows of ``env``,
    and the truth the labels ask of the atom there."""
    rows = pivotal(program, atom, env)
    sub = {k: v[rows] for k, v in env.items()}
    true_rows = np.asarray(substitute(program, atom, const(True)).evaluate(sub), dtype=bool)
    return rows, sub, true_rows == labels[rows]


def _want(op: str, required: np.ndarray) -> np.ndarray:
    """+1 where the margin must be above 0, -1 where below, for an atom ``op`` that
    must hold (or not) as ``required`` says."""
    sign = 1.0 if op in ("gt", "ge") else -1.0
    return sign * np.where(required, 1.0, -1.0)


def _holds(op: str, margin: np.ndarray) -> np.ndarray:
    """Where an atom ``left op right`` with this margin ``left - right`` holds."""
    return {"lt": margin < 0, "le": margin <= 0, "gt": margin > 0, "ge": margin >= 0}[op]


def coefficient_rivals(program: Program, atom: Apply, queried: Mapping[str, np.ndarray],
                       labels: np.ndarray, pool: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """For each coefficient of ``atom`` (of its line, for a quotient against a
    constant), the pool indices (pivotal there) where an extreme rival that still
    fits every queried label disagrees with the atom."""
    labels = np.asarray(labels, dtype=bool)
    line = quotient_as_line(atom)
    if line is not None:
        program, atom = substitute(program, atom, line), line
    op = atom.primitive.name
    with np.errstate(all="ignore"):
        on_q, q_sub, required = _asked(program, atom, queried, labels)
        if not on_q.any():
            return []
        m_q = _margin(atom, q_sub)
        on_p = pivotal(program, atom, pool)
        p_sub = {k: v[on_p] for k, v in pool.items()}
        m_p = _margin(atom, p_sub)
        held = _holds(op, m_p)
        index = np.flatnonzero(on_p)
        out = []
        for path in coefficient_paths(atom):
            moves = _direction(atom, path, [q_sub, p_sub])
            if moves is None:
                continue
            g_q, g_p = moves
            k = node_at(atom, path)
            rivals = _extreme_rivals(m_q, g_q, _want(op, required),
                                     bound=max(abs(float(k.value)), 1.0) / _step(k))
            differ = np.zeros(len(m_p), dtype=bool)
            for u, t in rivals:
                differ |= _holds(op, m_p + u * g_p + t) != held
            if differ.any():
                out.append(index[differ])
    return out


@dataclass(frozen=True)
class _Box:
    """A frame for ``(u, t)``: ``u = u_mid + u_half * u'``, ``t = t_mid + t_half * t'``
    with ``|u'|, |t'| <= 1``.  Linear programs and qhull work in it: a sliver of a
    polygon a millionth wide in raw units is a well-shaped one in its own box."""

    u_mid: float
    u_half: float
    t_mid: float
    t_half: float

    def raw(self, point) -> tuple[float, float]:
        return (self.u_mid + self.u_half * float(point[0]),
                self.t_mid + self.t_half * float(point[1]))


def _polygon(margin: np.ndarray, direction: np.ndarray, want: np.ndarray, box: _Box):
    """The half-planes ``want_i * (margin_i + u * direction_i + t) >= 0`` in ``box``'s
    frame, ``a @ (u', t') <= b`` with rows of unit norm; the last four rows are
    the box's sides."""
    a = np.column_stack([-want * direction * box.u_half, -want * box.t_half])
    b = want * (margin + direction * box.u_mid + box.t_mid)
    a = np.vstack([a, [[1, 0], [-1, 0], [0, 1], [0, -1]]])
    b = np.concatenate([b, np.ones(4)])
    norm = np.linalg.norm(a, axis=1)
    return a / norm[:, None], b / norm


def _raw_box(margin: np.ndarray, bound: float) -> _Box:
    """The frame of every move considered: the coefficient by at most ``bound`` steps,
    the offset by at most ten times the largest margin."""
    return _Box(0.0, bound, 0.0, 10.0 * (np.abs(margin).max(initial=0.0) + 1.0))


def _lp_point(a: np.ndarray, b: np.ndarray, objective, offsets=(-1, 1)) -> np.ndarray | None:
    result = linprog(objective, A_ub=a, b_ub=b, bounds=[(-1, 1), offsets], method="highs")
    return result.x if result.status == 0 else None


def _extreme_rivals(margin: np.ndarray, direction: np.ndarray, want: np.ndarray,
                    bound: float) -> list[tuple[float, float]]:
    """The vertices ``(u, t)`` of the polygon ``{want_i * (margin_i + u * direction_i
    + t) >= 0}`` (``|u| <= bound`` steps: a coefficient moved by at most its own
    size).  A point whose label depends on where in the polygon the truth lies
    gets another label from some vertex than from ``(0, 0)``.  Empty when even
    ``(0, 0)`` is not in the polygon."""
    if np.any(want * margin < 0):  # the atom itself contradicts a label: no version space
        return []
    raw = _raw_box(margin, bound)
    a, b = _polygon(margin, direction, want, raw)
    ends = [_lp_point(a, b, objective) for objective in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    if any(e is None for e in ends):
        return []
    extremes = [raw.raw(e) for e in ends]
    (u_lo, t_lo), (u_hi, t_hi) = np.min(extremes, axis=0), np.max(extremes, axis=0)
    if not (u_hi > u_lo and t_hi > t_lo):
        return extremes  # a segment or a point: its ends are all its vertices
    tight = _Box((u_lo + u_hi) / 2, (u_hi - u_lo) / 2, (t_lo + t_hi) / 2, (t_hi - t_lo) / 2)
    a, b = _polygon(margin, direction, want, tight)
    # qhull needs a point strictly inside: the centre of the largest disc there
    centre = linprog((0, 0, -1), A_ub=np.column_stack([a, np.ones(len(a))]), b_ub=b,
                     bounds=[(-1, 1), (-1, 1), (0, 1)], method="highs")
    if centre.status != 0 or centre.x[2] < 1e-9:
        return extremes
    try:
        vertices = HalfspaceIntersection(np.column_stack([a, -b]), centre.x[:2]).intersections
    except QhullError:
        return extremes
    return extremes + [tight.raw(v) for v in vertices]


# -- polishing: constants that fit every label where the atom decides ---------------
def polish(program: Program, env: Mapping[str, np.ndarray], labels: np.ndarray) -> Program:
    """``program`` with the thresholds or coefficients of its atoms moved, one at a
    time, to the simplest values that fit every label where the atom decides,
    when the current values do not and such values exist (a threshold alone,
    else a coefficient with the threshold refitted beside it); a quotient
    against a constant is polished as its line (:func:`quotient_as_line`).  The
    size never grows: a constant is one node whatever its digits, and a line is
    as large as its quotient.  Returns ``program`` itself when nothing fits better."""
    labels = np.asarray(labels, dtype=bool)
    with np.errstate(all="ignore"):
        wrong = int((np.asarray(program.evaluate(env), dtype=bool) != labels).sum())
        for atom in [a for a in dict.fromkeys(program.walk()) if is_comparison(a)]:
            if wrong == 0:
                break
            line = quotient_as_line(atom)
            form, start = (atom, program) if line is None else \
                (line, substitute(program, atom, line))
            for path in [None, *coefficient_paths(form)]:  # the threshold alone first
                new = _polish_atom(start, form, path, env, labels)
                if new is None:
                    continue
                candidate = substitute(start, form, new)
                errors = int((np.asarray(candidate.evaluate(env), dtype=bool) != labels).sum())
                if errors < wrong and candidate.size <= start.size:
                    program, wrong = candidate, errors
                    break
    return program


def _const_like(old: Const, value: float) -> Const:
    """``value`` as a constant of ``old``'s type where it can be (an integer), else real."""
    if old.type is INT and float(value).is_integer():
        return Const(int(value), INT)
    return Const(float(value), REAL)


def _threshold_between(side: np.ndarray, holds: np.ndarray, op: str) -> float | None:
    """The simplest ``c`` with ``side op c`` true exactly where ``holds``."""
    inside, outside = side[holds], side[~holds]
    if op in ("lt", "le"):  # holds below c
        lo, hi = inside.max(initial=-np.inf), outside.min(initial=np.inf)
        lo_open, hi_open = op == "lt", op == "le"
    else:  # holds above c
        lo, hi = outside.max(initial=-np.inf), inside.min(initial=np.inf)
        lo_open, hi_open = op == "ge", op == "gt"
    if not lo < hi:
        return None
    return simplest_in(lo, hi, lo_open=lo_open, hi_open=hi_open)


def _polish_atom(program: Program, atom: Apply, path: tuple | None, env,
                 labels) -> Apply | None:
    """The atom with its threshold, and the coefficient at ``path`` unless that is
    None, refitted so that it takes the truth the labels ask for where it
    decides; None if no values do.

    Rows where another atom is wrong ask this one for the wrong truth too; for
    a coefficient, the values that break the fewest rows in the L1 sense (a
    linear program with one slack per row) set those rows aside, and the
    simplest coefficient is taken from the version space of the rest."""
    rows, sub, required = _asked(program, atom, env, labels)
    if not rows.any():
        return None
    if np.array_equal(np.asarray(atom.evaluate(sub), dtype=bool), required):
        return None  # the atom already fits
    threshold = [i for i, arg in enumerate(atom.args) if isinstance(arg, Const)]
    if path is None:
        return _with_threshold(atom, threshold, sub, required) if threshold else None
    moves = _direction(atom, path, [sub])
    if moves is None:
        return None
    (direction,) = moves
    k = node_at(atom, path)
    step = _step(k)
    want = _want(atom.primitive.name, required)
    # without a threshold to absorb it the offset stays 0
    offsets = (-1, 1) if threshold else (0, 0)
    bound = max(abs(float(k.value)), 1.0) / step
    margin = _margin(atom, sub)
    keep = _inliers(*_polygon(margin, direction, want, _raw_box(margin, bound)), offsets)
    if keep is None or keep.sum() < 2:
        return None
    sub = {name: v[keep] for name, v in sub.items()}
    required, want, direction, margin = required[keep], want[keep], direction[keep], margin[keep]
    raw = _raw_box(margin, bound)
    a, b = _polygon(margin, direction, want, raw)
    ends = []  # the least and the greatest coefficient that fit
    for objective in ((1, 0), (-1, 0)):
        point = _lp_point(a, b, objective, offsets)
        if point is None:
            return None
        ends.append(float(k.value) + raw.raw(point)[0] * step)
    if not ends[0] < ends[1]:
        return None
    value = simplest_in(ends[0], ends[1], lo_open=True, hi_open=True)
    try:
        new = replace_at(atom, path, _const_like(k, value))
    except TypeError:  # a real where the atom needs an integer
        return None
    if threshold:
        return _with_threshold(new, threshold, sub, required)
    fits = np.array_equal(np.asarray(new.evaluate(sub), dtype=bool), required)
    return new if fits else None


def _with_threshold(atom: Apply, threshold: list[int], env, required) -> Apply | None:
    """The atom with its threshold (the constant side, at ``threshold``) refitted to
    hold exactly where ``required``; None if no threshold does."""
    (i,) = threshold
    side = np.asarray(atom.args[1 - i].evaluate(env), dtype=float)
    name = atom.primitive.name if i == 1 else _FLIPPED[atom.primitive.name]
    c = _threshold_between(side, required, name)
    if c is None:
        return None
    try:
        return replace_at(atom, (i,), _const_like(atom.args[i], c))
    except TypeError:
        return None


def _inliers(a: np.ndarray, b: np.ndarray, offsets: tuple[float, float]) -> np.ndarray | None:
    """Rows of ``a @ x <= b`` (the last four: the bounds, always kept out) that the
    point breaking them least in total, by slack, keeps; None if no such point."""
    n = len(a) - 4
    slack = -sparse.identity(n, format="csr")
    result = linprog(np.concatenate([[0.0, 0.0], np.ones(n)]),
                     A_ub=sparse.hstack([sparse.csr_matrix(a[:n]), slack], format="csr"),
                     b_ub=b[:n], bounds=[(-1, 1), offsets] + [(0, None)] * n, method="highs")
    if result.status != 0:
        return None
    return result.x[2:] <= 1e-9
