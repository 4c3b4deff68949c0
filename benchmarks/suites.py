"""Benchmark suites: hidden programs to recover, graded by difficulty.

* ``engine`` -- the ten acceptance programs of issue 2 over (x, y) in 0..112.
* ``grid`` -- 48 programs of our own over (x, y) in 0..112, eight for each
  number of atoms (comparisons) from 1 to 6, mixing atom kinds: linear,
  polynomial, modular, powers and roots, min/max/abs, parity, and threshold
  combinations (cut boxes, xors, counts of true conditions).
* ``images`` -- 15 programs of our own over the 10,000 MNIST test images
  (numpy expressions over ``image``, see :mod:`benchmarks.images_suite`),
  graded by atoms: total and regional ink, centroid, mirror symmetry, holes
  and connected components, similarity to the class means ``MEAN[d]`` of
  the data (thresholds, bands, differences), and combinations.
* ``casper`` -- the two EIS VII challenges, whose programs are secret (see
  :mod:`benchmarks.casper_suite`): the transformer's answers scored against
  the published ground truth, the MNIST CNN's answers by fidelity alone.

A task carries only the text of its hidden program; the runner evaluates it
to make the oracle's labels (or to train a network on), and the engine sees
those labels alone, never the program.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.images_suite import IMAGE_DOMAINS, ImageProgram, load_image_program
from benchmarks.programs import HiddenProgram, load_hidden
from dsl.domains import GridDomain, parse_domain

GRID = "grid:113x113"
#: Domains of the casper suite's tasks (no program text: the labels come from files).
CASPER_DOMAINS = ("casper-transformer", "casper-mnist")

#: Atom kinds a task may be tagged with.
KINDS = ("threshold", "linear", "polynomial", "modular", "power-root", "minmax-abs", "parity",
         "combination")
IMAGE_KINDS = ("ink", "region", "moments", "symmetry", "topology", "template", "combination")


@dataclass(frozen=True)
class Task:
    """One hidden program to recover on one domain."""

    name: str
    program: str
    suite: str = "custom"
    domain: str = GRID
    kinds: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        return f"{self.suite}-{self.name}"

    def grid(self) -> GridDomain:
        return parse_domain(self.domain)

    def hidden(self) -> HiddenProgram | ImageProgram:
        if self.domain in CASPER_DOMAINS:
            raise ValueError(f"task {self.name!r} is a challenge: its program is secret")
        if self.domain in IMAGE_DOMAINS:
            return load_image_program(self.program)
        return load_hidden(self.program, self.grid().names)

    @property
    def atoms(self) -> int | None:
        """Comparisons in the hidden program (None for a challenge's secret one)."""
        return None if self.domain in CASPER_DOMAINS else self.hidden().atoms

    @property
    def on_images(self) -> bool:
        """Whether the task's inputs are images (image peers and settings apply)."""
        return self.domain in IMAGE_DOMAINS or self.domain == "casper-mnist"

    def to_json(self) -> dict:
        return {"name": self.name, "suite": self.suite, "program": self.program,
                "domain": self.domain, "kinds": list(self.kinds), "atoms": self.atoms}


def _suite(name: str, rows: list[tuple[str, str, str]], domain: str = GRID) -> tuple[Task, ...]:
    return tuple(Task(n, p, name, domain, tuple(k.split())) for n, p, k in rows)


# The acceptance programs of issue 2, verbatim.
ENGINE = _suite("engine", [
    ("e01", "x + y > 100", "linear"),
    ("e02", "x * y % 13 < 4", "polynomial modular"),
    ("e03", "abs(x - y) < 17", "minmax-abs"),
    ("e04", "x*x + y*y < 5000", "polynomial"),
    ("e05", "(x > 40) != (y < 70)", "threshold combination"),
    ("e06", "y > 0.02 * x * x + 5", "polynomial"),
    ("e07", "x % 6 == 0 or y % 9 == 0", "modular"),
    ("e08", "max(x, y) > 2 * min(x, y)", "minmax-abs"),
    ("e09", "x**3 < 9000 * sqrt(y)", "power-root"),
    ("e10", "(x + y) % 7 < 3 and x < 80", "modular threshold"),
])

# Our own programs, eight per number of atoms (1..6).  None is an issue-2 example.
GRID_SUITE = _suite("grid", [
    # 1 atom
    ("a1-cut", "x > 57", "threshold"),
    ("a1-line", "3*x + 2*y < 230", "linear"),
    ("a1-hyperbola", "x*y > 2100", "polynomial"),
    ("a1-mod", "(2*x + y) % 11 < 4", "modular"),
    ("a1-roots", "sqrt(x) + sqrt(y) > 13", "power-root"),
    ("a1-abs", "abs(x - 2*y) < 25", "minmax-abs linear"),
    ("a1-parity", "(x + y) % 2 == 1", "parity"),
    ("a1-max", "max(x, 2*y) < 90", "minmax-abs"),
    # 2 atoms
    ("a2-corner", "x > 25 and y < 85", "threshold combination"),
    ("a2-band", "y > x - 20 and y < x + 30", "linear"),
    ("a2-ring-half", "x*x + y*y > 6000 and x < y", "polynomial linear"),
    ("a2-residues", "x % 4 == 1 or y % 5 == 3", "modular"),
    ("a2-parabola", "x**2 < 50*y or x > 100", "power-root threshold"),
    ("a2-minabs", "min(x, y) > 30 and abs(x - y) < 40", "minmax-abs"),
    ("a2-even", "x % 2 == 0 and y % 2 == 0", "parity"),
    ("a2-geomean", "sqrt(x*y) < 40 and x + y > 50", "power-root linear"),
    # 3 atoms
    ("a3-slab-mod", "20 < x < 90 and y % 7 == 2", "threshold modular"),
    ("a3-parity-xor", "(x % 2 == 0) != (y % 3 == 0) and x + y < 150",
     "parity modular linear combination"),
    ("a3-hyper-corner", "x*y < 1500 or (x > 80 and y > 80)", "polynomial threshold"),
    ("a3-diagonal", "abs(x - y) < 8 or x < 12 or y < 12", "minmax-abs threshold"),
    ("a3-ratio", "3*min(x, y) > max(x, y) and x + y > 50 and x % 2 == 0",
     "minmax-abs linear parity"),
    ("a3-disc", "(x - 56)**2 + (y - 40)**2 < 800 or (x < 10 and y > 100)",
     "polynomial threshold"),
    ("a3-cubic", "y**3 > 40*x**2 and x % 3 != 0 and y < 100", "power-root modular threshold"),
    ("a3-triangle", "2*x - y > 10 and x + 3*y < 250 and y > 15", "linear"),
    # 4 atoms
    ("a4-box", "30 < x < 80 and 20 < y < 70", "threshold combination"),
    ("a4-lattice", "(x + y) % 5 == 0 or (x - y) % 7 == 0 or x < 5 or y > 107",
     "modular threshold"),
    ("a4-hyper-mod", "(x*x + y*y < 2500 or x*y > 9000) and x % 3 != 1 and y > 3",
     "polynomial modular threshold"),
    ("a4-diamond", "abs(x - 56) + abs(y - 56) < 45 and x % 2 == 1 or y > 100 and x < 20",
     "minmax-abs parity threshold"),
    ("a4-square-mod", "max(x, y) < 95 and min(x, y) > 10 and (x + y) % 4 < 2 and x != y",
     "minmax-abs modular linear"),
    ("a4-roots-mod", "9*sqrt(x) > y and 9*sqrt(y) > x and x + y > 40 and x*y % 3 == 0",
     "power-root linear modular"),
    ("a4-double-xor", "((x > 50) != (y > 50)) != ((x % 10 < 5) != (y % 10 < 5))",
     "threshold modular combination"),
    ("a4-odd-box", "x % 2 == 1 and y % 2 == 1 and x > 20 and y < 90", "parity threshold"),
    # 5 atoms
    ("a5-box-mod", "20 < x < 100 and 10 < y < 60 and (x + y) % 3 == 0",
     "threshold modular"),
    ("a5-edges", "x + y < 40 or x + y > 190 or abs(x - y) > 90 or (x % 8 == 0 and y % 8 == 0)",
     "linear minmax-abs modular"),
    ("a5-lens", "x*x < 40*y and y*y < 40*x or x > 105 or y > 105 or x == y",
     "polynomial threshold linear"),
    ("a5-xor-mod", "(x > 35) != (y < 60) and (x % 3 == 0 or y % 4 == 0) and x + y > 30",
     "threshold modular linear combination"),
    ("a5-checker", "min(x, y) > 20 and max(x, y) < 90 and abs(x - y) > 10 and x % 2 == 0 "
                   "and y % 2 == 1", "minmax-abs parity"),
    ("a5-cubes", "x**3 + y**3 < 500000 and x > 10 and y > 10 or x % 20 == 0 or y % 20 == 0",
     "power-root threshold modular"),
    ("a5-hexagon", "2*x + y > 60 and x + 2*y > 60 and 2*x + y < 250 and x + 2*y < 250 "
                   "and x != y", "linear"),
    ("a5-count", "(x % 3 == 0) + (y % 3 == 0) + (x % 5 == 0) + (y % 5 == 0) "
                 "+ (x + y > 150) >= 2",
     "modular combination"),
    # 6 atoms
    ("a6-two-triangles", "x < 50 and y < 50 and x + y > 40 or x > 60 and y > 60 "
                         "and x + y < 180", "threshold linear"),
    ("a6-vote", "(x > 20) + (y > 30) + (x + y > 100) + (x % 2 == 0) + (y % 3 == 0) "
                "+ (x*y > 3000) >= 4", "combination threshold linear parity polynomial"),
    ("a6-common-factor", "x % 2 == 0 and y % 2 == 0 or x % 3 == 0 and y % 3 == 0 "
                         "or x % 5 == 0 and y % 5 == 0", "modular parity"),
    ("a6-two-squares", "abs(x - 30) < 15 and abs(y - 30) < 15 or abs(x - 80) < 15 "
                       "and abs(y - 80) < 15 or abs(x - y) < 3 or x + y == 112",
     "minmax-abs linear"),
    ("a6-annulus-mod", "max(x, y) < 100 and min(x, y) > 12 and x*x + y*y > 4000 "
                       "and x*y < 7000 and x % 4 != 3 and y % 4 != 3",
     "minmax-abs polynomial modular"),
    ("a6-root-band", "sqrt(x) + sqrt(y) > 10 and sqrt(x) + sqrt(y) < 18 and x > y "
                     "and x % 2 == 0 and y % 3 != 0 and x < 100",
     "power-root linear parity modular threshold"),
    ("a6-xor-pairs", "(x + y > 112) != (x > y) and (x % 7 < 3) != (y % 7 < 3) and x > 5 "
                     "and y > 5", "linear modular threshold combination"),
    ("a6-parabola-band", "y > 0.01*x*x + 10 and y < 0.01*x*x + 60 and 5 < x < 105 "
                         "and (x + y) % 2 == 0 and y < 100", "polynomial threshold parity"),
])

# Pieces of image programs, spelled out in numpy (``image`` is one 28x28 image).
_COSINE = "(image * MEAN[{d}]).sum() / (np.linalg.norm(image) * np.linalg.norm(MEAN[{d}]))"
_HOLES = "ndimage.label(np.pad(image <= 0.5, 1, constant_values=True))[1] - 1"
_COMPONENTS = "ndimage.label(image > 0.5, np.ones((3, 3)))[1]"
_CENTROID_ROW = "(image.sum(axis=1) * np.arange(28)).sum() / image.sum()"
_MIRROR = "np.abs(image - image[:, ::-1]).mean()"

# Our own programs over MNIST test images (issue 5), by number of atoms.
IMAGES_SUITE = _suite("images", [
    # 1 atom
    ("i1-ink", "image.sum() > 100", "ink"),
    ("i1-lower-half", "image[14:].sum() > 50", "region"),
    ("i1-top-rows", "image[:7].sum() < 5", "region"),
    ("i1-left-heavy", "image[:, :14].sum() > image[:, 14:].sum()", "region"),
    ("i1-centroid", f"{_CENTROID_ROW} > 14", "moments"),
    ("i1-symmetry", f"{_MIRROR} < 0.14", "symmetry"),
    ("i1-holes", f"{_HOLES} >= 1", "topology"),
    ("i1-mean-0", f"{_COSINE.format(d=0)} > 0.5", "template"),
    ("i1-contrast-3-5", "(image * (MEAN[3] - MEAN[5])).sum() > 3", "template"),
    # 2 atoms
    ("i2-band-8", f"0.55 < {_COSINE.format(d=8)} < 0.7", "template"),
    ("i2-holes-light", f"{_HOLES} >= 1 and image.sum() < 120", "topology ink combination"),
    ("i2-mean-1-or-7", f"{_COSINE.format(d=1)} > 0.6 or {_COSINE.format(d=7)} > 0.65",
     "template combination"),
    ("i2-pieces", f"{_COMPONENTS} >= 2 or image.sum() < 60", "topology ink combination"),
    # 3 atoms
    ("i3-open-seven", f"image.sum() > 80 and {_HOLES} == 0 and {_COSINE.format(d=7)} > 0.5",
     "ink topology template combination"),
    ("i3-mirror-or-low", f"{_MIRROR} < 0.12 or image[:7].sum() < 3 and image.sum() > 120",
     "symmetry region ink combination"),
], domain="mnist")

CASPER_SUITE = (
    Task("transformer", "secret: challenge 2 (ground truth in casper/transformer_label_info.pkl)",
         "casper", "casper-transformer", ("challenge",)),
    Task("mnist", "secret: challenge 1 (the CNN casper/mnist_model.pt)", "casper",
         "casper-mnist", ("challenge",)),
)

SUITES: dict[str, tuple[Task, ...]] = {"engine": ENGINE, "grid": GRID_SUITE,
                                       "images": IMAGES_SUITE, "casper": CASPER_SUITE}


def get_suite(name: str) -> tuple[Task, ...]:
    if name in SUITES:
        return SUITES[name]
    raise ValueError(f"unknown suite {name!r}; known: {', '.join(sorted(SUITES))}")


def custom_tasks(programs: list[str], domain: str = GRID) -> tuple[Task, ...]:
    """Ad-hoc tasks, one per ``--program`` (checked now, so errors come early)."""
    tasks = []
    for i, program in enumerate(programs, start=1):
        task = Task(f"p{i:02d}", program, "custom", domain)
        task.hidden()  # raises ValueError on a bad program
        tasks.append(task)
    return tuple(tasks)
