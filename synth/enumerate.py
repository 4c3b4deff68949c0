"""Bottom-up enumeration with observational equivalence.

Programs are built in order of size from the banks of smaller programs.
Every new program is evaluated vectorised on the signature points (a sample
of the queries) and kept only if no smaller program already produced the
same output vector there: the same behaviour is never explored twice.
Candidates of one primitive and one split of sizes are evaluated together as
one numpy broadcast over (left bank x right bank x points).
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dsl.primitives import MAX_SAFE, Primitive
from dsl.program import Apply, Const, Program
from dsl.types import BOOL, INT, REAL, Type, accepts, result_type

#: Upper bound on elements evaluated in one broadcast block.
_BLOCK_ELEMENTS = 1 << 22
#: Points hashed to key a behaviour (equal keys are then compared in full).
_KEY_COLUMNS = 256


@dataclass(frozen=True)
class Grammar:
    """What programs may be built from: leaves, literal constants, primitives.

    ``inputs`` are the leaves: input variables, or any scalar programs over
    the inputs (image features such as ``ink(image)``), which then cost
    their own size.  ``constants`` are leaves usable anywhere.  ``slot_literals`` maps a
    primitive name to extra constants allowed only as its *last* argument:
    moduli and divisors (``x % 13``) without flooding every other slot with
    constants that thresholds make redundant (``x + 13`` ranks like ``x``).
    """

    inputs: tuple[Program, ...]
    constants: tuple[Const, ...]
    primitives: tuple[Primitive, ...]
    slot_literals: tuple[tuple[str, tuple[Const, ...]], ...] = ()

    def literals_for(self, prim: Primitive) -> tuple[Const, ...]:
        return dict(self.slot_literals).get(prim.name, ())

    def __post_init__(self) -> None:
        if len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"duplicate leaves in grammar: {[str(v) for v in self.inputs]}")


@dataclass
class Bank:
    """Kept programs of one size and type, with their signature values as rows."""

    programs: list[Program] = field(default_factory=list)
    blocks: list[np.ndarray] = field(default_factory=list)
    _values: np.ndarray | None = None

    def add(self, programs: list[Program], block: np.ndarray) -> None:
        self.programs.extend(programs)
        self.blocks.append(block)
        self._values = None

    @property
    def values(self) -> np.ndarray:
        """All rows as one array (joined lazily: banks grow block by block)."""
        if self._values is None:
            self._values = np.concatenate(self.blocks) if len(self.blocks) > 1 else self.blocks[0]
            self.blocks = [self._values]
        return self._values


class Enumerator:
    """Enumerates one program per behaviour on ``env``, smallest first.

    ``env`` maps input names to the signature points.  Programs whose values
    leave the safe range (``|v| > 2**53``), hold NaN/inf, or are constant
    (other than literals) are discarded.
    """

    def __init__(self, grammar: Grammar, env: Mapping[str, np.ndarray], seed: int = 0,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.grammar = grammar
        self.clock = clock
        self.env = {k: np.asarray(v) for k, v in env.items()}
        self.n = len(next(iter(self.env.values())))
        rng = np.random.default_rng(seed)
        self._key_columns = np.sort(rng.choice(self.n, size=min(self.n, _KEY_COLUMNS),
                                               replace=False))
        self._multipliers = rng.integers(1, 2**63, size=len(self._key_columns),
                                         dtype=np.uint64) | np.uint64(1)
        self._seen: dict[tuple[Type, int], list[tuple[np.ndarray, int]]] = {}
        # banks[size][type] -> Bank
        self.banks: dict[int, dict[Type, Bank]] = {}
        self._literal_banks = {
            prim.name: _literal_banks(self.grammar.literals_for(prim), self.env, self.n)
            for prim in grammar.primitives if grammar.literals_for(prim)}
        self.candidates = 0
        self.kept = 0
        self.max_size_completed = 0

    # -- public -------------------------------------------------------------
    def run(self, max_size: int, deadline: float | None = None) -> Iterator[tuple[int, Program]]:
        """Enumerate sizes 1..max_size, yielding ``(size, program)`` as each size
        completes; the leaves (size 1) always, however late."""
        for size in range(1, max_size + 1):
            if size <= self.max_size_completed:
                continue
            if size > 1 and deadline is not None and self.clock() > deadline:
                break
            completed = self._build_size(size, deadline if size > 1 else None)
            if not completed:
                break
            self.max_size_completed = size
            for bank in self.banks[size].values():
                for program in bank.programs:
                    yield size, program

    def programs(self, types: Sequence[Type] | None = None) -> list[Program]:
        """All kept programs so far, in order of size."""
        out = []
        for size in sorted(self.banks):
            for t, bank in self.banks[size].items():
                if types is None or t in types:
                    out.extend(bank.programs)
        return out

    def values_of(self, types: Sequence[Type] | None = None,
                  points: int | None = None) -> tuple[list[Program], np.ndarray]:
        """Kept programs and their values on the first ``points`` signature points."""
        progs, rows = [], []
        for size in sorted(self.banks):
            for t, bank in self.banks[size].items():
                if (types is None or t in types) and bank.programs:
                    progs.extend(bank.programs)
                    rows.append(bank.values[:, :points])
        if not rows:
            return [], np.zeros((0, self.n))
        return progs, np.concatenate(rows)

    # -- building -------------------------------------------------------------
    def _build_size(self, size: int, deadline: float | None) -> bool:
        self.banks.setdefault(size, {})  # keeps what an interrupted run of this size kept
        for leaf in (*self.grammar.inputs, *self.grammar.constants):
            if leaf.size == size:
                values = np.broadcast_to(leaf.evaluate(self.env), (self.n,))
                self._offer(size, leaf.type, [leaf], values[None, :], literal=True)
        if size == 1:
            return True
        for prim in self.grammar.primitives:
            budget = size - prim.cost
            if budget < prim.arity:
                continue
            for sizes in _compositions(budget, prim.arity):
                if deadline is not None and self.clock() > deadline:
                    return False
                self._apply_all(prim, size, sizes)
        return True

    def _apply_all(self, prim: Primitive, size: int, sizes: tuple[int, ...]) -> None:
        choices = []
        for position, (slot, s) in enumerate(zip(prim.arg_types, sizes)):
            banks = [(t, b) for t, b in self.banks.get(s, {}).items()
                     if accepts(slot, t) and b.programs]
            if s == 1 and position == prim.arity - 1 and prim.name in self._literal_banks:
                banks += [(t, b) for t, b in self._literal_banks[prim.name].items()
                          if accepts(slot, t)]
            if not banks:
                return
            choices.append(banks)
        for combo in itertools.product(*choices):
            arg_types = tuple(t for t, _ in combo)
            out_type = result_type(prim.ret_type, arg_types)
            banks = [b for _, b in combo]
            same_bank = (prim.commutative and prim.arity == 2 and banks[0] is banks[1])
            if (prim.commutative and prim.arity == 2 and sizes[0] > sizes[1]
                    and not _is_literal_bank(banks[1], self._literal_banks.get(prim.name))):
                continue  # the mirrored split covers it (slot literals go last only)
            if prim.arity == 1:
                self._apply_unary(prim, size, out_type, banks[0])
            elif prim.arity == 2:
                self._apply_binary(prim, size, out_type, banks[0], banks[1], same_bank)
            else:
                self._apply_general(prim, size, out_type, banks)

    def _apply_unary(self, prim, size, out_type, bank: Bank) -> None:
        step = max(1, _BLOCK_ELEMENTS // self.n)
        for i in range(0, len(bank.programs), step):
            vals = _call(prim, bank.values[i:i + step])
            progs = [Apply(prim, (p,)) for p in bank.programs[i:i + step]]
            self._offer(size, out_type, progs, vals)

    def _apply_binary(self, prim, size, out_type, left: Bank, right: Bank, same: bool) -> None:
        n_right = len(right.programs)
        rows = max(1, _BLOCK_ELEMENTS // max(1, n_right * self.n))
        for i in range(0, len(left.programs), rows):
            a = left.values[i:i + rows]
            vals = _call(prim, a[:, None, :], right.values[None, :, :])
            vals = vals.reshape(-1, self.n)
            pairs = [(li, rj) for li in range(i, i + len(a)) for rj in range(n_right)]
            if same:
                keep = [k for k, (li, rj) in enumerate(pairs) if li <= rj]
                vals = vals[keep]
                pairs = [pairs[k] for k in keep]
            progs = _LazyApply(prim, left.programs, right.programs, pairs)
            self._offer(size, out_type, progs, vals)

    def _apply_general(self, prim, size, out_type, banks: list[Bank]) -> None:
        for combo in itertools.product(*(range(len(b.programs)) for b in banks)):
            vals = _call(prim, *(b.values[j] for b, j in zip(banks, combo)))[None, :]
            prog = Apply(prim, tuple(b.programs[j] for b, j in zip(banks, combo)))
            self._offer(size, out_type, [prog], vals)

    def _offer(self, size: int, out_type: Type, programs, values: np.ndarray,
               literal: bool = False) -> None:
        """Keep the candidates whose behaviour is new."""
        values = _as_type(np.asarray(values), out_type)
        if values.ndim == 1:
            values = values[None, :]
        self.candidates += len(values)
        ok = np.ones(len(values), dtype=bool)
        if out_type is not BOOL:
            with np.errstate(invalid="ignore"):
                ok &= (np.abs(values) <= MAX_SAFE).all(axis=1)  # also drops NaN and inf
        if not literal:
            ok &= (values != values[:, :1]).any(axis=1)  # drop constant behaviours
        rows = np.flatnonzero(ok)
        keys = self._keys(values[rows]).tolist()
        bank = self.banks[size].setdefault(out_type, Bank())
        kept: list[tuple[int, int]] = []
        for k, key in zip(rows.tolist(), keys):
            hits = self._seen.setdefault((out_type, key), [])
            if any(np.array_equal(block[i], values[k]) for block, i in hits):
                continue
            hits.append((values, k))
            kept.append((k, key))
        if kept:
            block = values[[k for k, _ in kept]]
            for i, (k, key) in enumerate(kept):  # point the index at the compact block
                hits = self._seen[(out_type, key)]
                j = next(j for j, (b, r) in enumerate(hits) if b is values and r == k)
                hits[j] = (block, i)
            bank.add([programs[k] for k, _ in kept], block)
            self.kept += len(kept)

    def _keys(self, values: np.ndarray) -> np.ndarray:
        """Hash keys of rows: a random linear form over mixed bit patterns.

        Each value's bit pattern is mixed (splitmix64 finaliser) before the
        form, so keys depend on a row's values alone (never on summation
        order) and structured differences between rows do not collide.  Only
        ``_KEY_COLUMNS`` points drawn at random are hashed: rows with equal keys are
        compared in full before one is dropped.
        """
        values = values[:, self._key_columns]
        if values.dtype == bool:
            bits = values.astype(np.uint64)
        else:
            bits = (values + 0.0).view(np.uint64)  # + 0.0 folds -0.0 into 0.0
        with np.errstate(over="ignore"):
            z = bits ^ (bits >> np.uint64(30))
            z = z * np.uint64(0xBF58476D1CE4E5B9)
            z = z ^ (z >> np.uint64(27))
            z = z * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            return (z * self._multipliers).sum(axis=1, dtype=np.uint64)


class _LazyApply:
    """Builds ``Apply`` nodes only for the candidates that are kept."""

    def __init__(self, prim, left, right, pairs) -> None:
        self.prim, self.left, self.right, self.pairs = prim, left, right, pairs

    def __getitem__(self, k: int) -> Apply:
        li, rj = self.pairs[k]
        return Apply(self.prim, (self.left[li], self.right[rj]))

    def __len__(self) -> int:
        return len(self.pairs)


def _is_literal_bank(bank: Bank, literal_banks: dict[Type, Bank] | None) -> bool:
    return literal_banks is not None and any(bank is b for b in literal_banks.values())


def _literal_banks(literals: tuple[Const, ...], env, n: int) -> dict[Type, Bank]:
    banks: dict[Type, Bank] = {}
    for lit in literals:
        row = _as_type(np.broadcast_to(lit.evaluate(env), (n,)), lit.type)[None, :]
        banks.setdefault(lit.type, Bank()).add([lit], row)
    return banks


def _call(prim: Primitive, *args: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(prim.impl(*args))


def _as_type(values: np.ndarray, t: Type) -> np.ndarray:
    """Numeric values are held as float64: Int values are exact there up to
    2**53, and a result beyond that rounds to a float the range check drops,
    where int64 would wrap silently."""
    if t is BOOL:
        return values.astype(bool, copy=False)
    if t in (INT, REAL):
        return values.astype(np.float64, copy=False)
    return values


def _compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    """Ordered tuples of ``parts`` positive ints summing to ``total``."""
    if parts == 1:
        yield (total,)
        return
    for first in range(1, total - parts + 2):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)
