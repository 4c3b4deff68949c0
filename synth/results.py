"""Search results: candidates, the Pareto front, statistics, and their JSON form.

JSON files are written atomically (a temporary file renamed into place), so
a search stopped at any moment never leaves a truncated result behind.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dsl.printing import to_python
from dsl.program import Program


@dataclass(frozen=True)
class Candidate:
    """A labelling program with its size and agreement with the oracle."""

    program: Program = field(repr=False)
    python: str
    size: int
    fidelity: float  # on the rows the search fitted
    holdout_fidelity: float | None  # on held-out rows, never fitted
    evidence: dict = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, program: Program, inputs, fidelity: float, holdout: float | None,
           evidence: dict | None = None) -> Candidate:
        return cls(program, to_python(program, list(inputs)), program.size, fidelity, holdout,
                   evidence or {})

    def to_json(self) -> dict:
        out = {"python": self.python, "expression": str(self.program), "size": self.size,
               "fidelity": self.fidelity, "holdout_fidelity": self.holdout_fidelity}
        if self.evidence:
            out["evidence"] = self.evidence
        return out


@dataclass(frozen=True)
class SearchStats:
    programs_evaluated: int  # distinct programs scored (features and formulas)
    candidates_generated: int  # including those dropped as observationally equivalent
    seconds: float
    max_feature_size: int
    features_indexed: int
    queries: int
    interrupted: bool = False

    @property
    def programs_per_second(self) -> float:
        return self.programs_evaluated / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        return {**asdict(self), "programs_per_second": self.programs_per_second}


@dataclass(frozen=True)
class SearchResult:
    """The best program, the Pareto front it was picked from, and how the search went.

    ``as_fitted`` is the front by fidelity alone, constants as fitted: at each
    size the most faithful program found, its digits costing nothing.  It is
    never the answer (a fitted ``2.874`` for a round ``3`` copies a few of the
    oracle's mistakes); it is what compares with methods whose constants are
    free, such as a decision tree's thresholds.
    """

    best: Candidate
    pareto: tuple[Candidate, ...]
    stats: SearchStats
    settings: dict = field(default_factory=dict)
    as_fitted: tuple[Candidate, ...] = ()

    def to_json(self) -> dict:
        return {"best": self.best.to_json(), "pareto": [c.to_json() for c in self.pareto],
                "as_fitted": [c.to_json() for c in self.as_fitted],
                "stats": self.stats.to_json(), "settings": self.settings}


def write_json_atomic(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
