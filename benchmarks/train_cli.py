"""``synth train``: train a network on a hidden program's labels and save it.

::

    synth train --domain grid:113x113 --program "x*x < 200*sqrt(y)" --arch mlp \\
        --out model.pt [--seed N] [--epochs N]
    synth train --program "x % 7 < 3" --arch casper-transformer --out t.pt

``--arch mlp`` (the default) is an MLP on the one-hot inputs, trained with
Adam; ``--arch casper-transformer`` is the challenge-2 one-layer transformer
(tokens ``[x, y, =]``, square grids only) with the challenge's published
recipe (full batch, AdamW at learning rate 5e-4 and weight decay 1.0; ``--lr``
and ``--hidden`` are the MLP's and do not apply).

The program is a Python expression over the domain's inputs, or a ``.py``
file defining ``label(x, y)`` (see :mod:`benchmarks.programs`).  The network
trains on a fixed half of the domain drawn from the seed; the other half
measures how well it generalises.  The checkpoint is written with
:func:`oracles.architectures.save_model`, so it loads with
``torch.load(weights_only=True)`` and with ``synth search --model``.

:func:`cached_network` is the same training behind a cache keyed by every
setting (outside the repository: ``$SYNTH_CACHE_DIR`` or ``~/.cache/synth``),
which ``synth bench --source network`` uses.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.programs import HiddenProgram, load_hidden
from dsl.domains import GridDomain, parse_domain

ARCHES = ("mlp", "casper-transformer")

#: Default epochs per architecture (the transformer's: the replica's recipe,
#: ``oracles.transformer_training.DEFAULT_EPOCHS``, not imported here to keep torch
#: out of start-up; a test keeps the two equal).
DEFAULT_EPOCHS = {"mlp": 400, "casper-transformer": 1000}


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines a trained network (the cache key)."""

    arch: str = "mlp"
    seed: int = 0
    epochs: int = DEFAULT_EPOCHS["mlp"]
    hidden: tuple[int, ...] = (256, 256)
    lr: float = 3e-3
    weight_decay: float = 1e-4
    train_fraction: float = 0.5

    def __post_init__(self) -> None:
        _check_recipe(self.arch, ARCHES, "a grid", self.train_fraction)
        if self.epochs < 1:
            raise ValueError(f"--epochs must be positive, got {self.epochs}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden widths must be positive, got {self.hidden}")


def _check_recipe(arch: str, arches: tuple[str, ...], domain: str,
                  train_fraction: float) -> None:
    """What every training recipe must satisfy: a known architecture, a proper split."""
    if arch not in arches:
        raise ValueError(f"unknown architecture {arch!r} for training on {domain}; "
                         f"choose one of {', '.join(arches)}")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train fraction must be in (0, 1), got {train_fraction}")


#: Stream of the training split, apart from the seed's plain stream: the engine draws
#: its held-out rows from ``default_rng(seed)``, and drawing the split from the same
#: stream would nest them in the training half (held-out fidelity would then read 1.0).
SPLIT_STREAM = 0x5B1D


def train_split(domain: GridDomain | int, seed: int, fraction: float = 0.5) -> np.ndarray:
    """The rows a network trains on: a fixed fraction of the domain (or of ``domain``
    rows, e.g. images), drawn from ``seed``."""
    n = domain if isinstance(domain, (int, np.integer)) else domain.size
    rng = np.random.default_rng([seed, SPLIT_STREAM])
    return np.sort(rng.permutation(n)[: int(n * fraction)])


def train_network(hidden: HiddenProgram, domain: GridDomain, settings: TrainSettings):
    """Train a fresh network on ``hidden``'s labels over a split of ``domain``.

    Returns ``(module, spec, info)``; ``info`` holds train / held-out accuracy
    and the agreement of the network with the program on the whole domain."""
    if settings.arch == "casper-transformer":
        return _train_transformer(hidden, domain, settings)
    import torch

    from oracles.architectures import new_model
    from oracles.torch_oracle import TorchOracle
    from oracles.training import train_classifier

    inputs = domain.all_inputs()
    labels = hidden.evaluate(inputs)
    torch.manual_seed(settings.seed)
    module, spec = new_model(settings.arch, {"hidden": list(settings.hidden)}, domain=domain)
    encoded = spec.encoder()(inputs)
    train = train_split(domain, settings.seed, settings.train_fraction)
    rest = np.setdiff1d(np.arange(domain.size), train)
    y = torch.as_tensor(labels, dtype=torch.long)
    report = train_classifier(module, encoded[train], y[train], epochs=settings.epochs,
                              lr=settings.lr, weight_decay=settings.weight_decay,
                              seed=settings.seed, optimizer="adam",
                              eval_set=(encoded[rest], y[rest]))
    predicted = TorchOracle(module, spec.encoder(), spec.input_names).labels(inputs)
    info = {"train_accuracy": report.train_accuracy, "heldout_accuracy": report.eval_accuracy,
            "agreement": float(np.mean(predicted == labels)), "seconds": report.seconds,
            "epochs": report.epochs}
    return module, spec, info


def _train_transformer(hidden: HiddenProgram, domain: GridDomain, settings: TrainSettings):
    """:func:`train_network` for the challenge-2 transformer: the published recipe
    (:class:`oracles.transformer_training.TrainingConfig`) on the same split."""
    import torch

    from oracles.architectures import new_model
    from oracles.torch_oracle import TorchOracle
    from oracles.transformer_training import TrainingConfig, fit

    if len(domain.shape) != 2 or domain.shape[0] != domain.shape[1]:
        raise ValueError(f"the casper-transformer reads pairs of tokens 0..p-1: it needs a "
                         f"square two-input grid, not {domain}")
    inputs = domain.all_inputs()
    labels = hidden.evaluate(inputs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        module, spec = new_model(settings.arch, {"d_vocab": domain.shape[0] + 1})
    tokens, y = spec.encoder()(inputs), torch.as_tensor(labels, dtype=torch.long)
    train = train_split(domain, settings.seed, settings.train_fraction)
    rest = np.setdiff1d(np.arange(domain.size), train)
    report = fit(module, tokens[train], y[train], tokens[rest], y[rest], settings.epochs,
                 TrainingConfig(frac_train=settings.train_fraction))
    predicted = TorchOracle(module, spec.encoder(), spec.input_names).labels(inputs)
    info = {"train_accuracy": report.train_accuracy, "heldout_accuracy": report.test_accuracy,
            "agreement": float(np.mean(predicted == labels)), "seconds": report.seconds,
            "epochs": report.epochs}
    return module, spec, info


def cache_dir() -> Path:
    root = os.environ.get("SYNTH_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "synth"


def cached_network(program: str, domain_spec: str, settings: TrainSettings,
                   root: Path | None = None) -> tuple[Path, dict]:
    """Train (or reuse) the network for ``program`` on ``domain_spec``; return the
    checkpoint path and its training info."""
    domain = parse_domain(domain_spec)
    hidden = load_hidden(program, domain.names)
    key = {"program": hidden.source, "domain": str(domain), **asdict(settings),
           "split_stream": SPLIT_STREAM}
    return cached_model(key, settings.arch, lambda: train_network(hidden, domain, settings),
                        root)


def cached_model(key: dict, arch: str, train, root: Path | None = None) -> tuple[Path, dict]:
    """The checkpoint cached under ``key`` (every setting that determines the network),
    made by ``train() -> (module, spec, info)`` on a miss; returns its path and info."""
    from oracles.architectures import save_model
    from synth.results import write_json_atomic

    text = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    folder = (root or cache_dir()) / "networks"
    path, meta = folder / f"{arch}-{digest}.pt", folder / f"{arch}-{digest}.json"
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())["info"]
    module, spec, info = train()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    save_model(tmp, module, spec.arch, spec.config)
    os.replace(tmp, path)
    write_json_atomic(meta, {"key": json.loads(text), "info": info})
    return path, info


# ---------------------------------------------------------------------------
# image networks


IMAGE_ARCHES = ("casper-cnn",)


@dataclass(frozen=True)
class ImageTrainSettings:
    """Everything that determines a trained image network (with the data: the cache key).

    The recipe: Adam on minibatches of 256, ``epochs`` at ``lr``, then
    ``decay_epochs`` at ``decay_lr``.  On the images suite it trains the
    challenge-1 CNN on 5,000 MNIST images to about 94-98% on the other 5,000
    (the decay stage adds 1-3 points over the first stage alone)."""

    arch: str = "casper-cnn"
    seed: int = 0
    epochs: int = 60
    batch_size: int = 256
    lr: float = 3e-3
    decay_epochs: int = 30
    decay_lr: float = 3e-4
    weight_decay: float = 1e-4
    train_fraction: float = 0.5

    def __post_init__(self) -> None:
        _check_recipe(self.arch, IMAGE_ARCHES, "images", self.train_fraction)
        if self.epochs < 1 or self.decay_epochs < 0 or self.batch_size < 1:
            raise ValueError(f"epochs and batch size must be positive (decay epochs 0 or "
                             f"more), got {self.epochs}, {self.batch_size} and "
                             f"{self.decay_epochs}")


def train_image_network(images: np.ndarray, labels: np.ndarray,
                        settings: ImageTrainSettings):
    """Train a fresh image network on ``labels`` over a split of ``images``
    (:func:`train_split` of their count).  Returns ``(module, spec, info)``."""
    import torch

    from oracles.architectures import new_model
    from oracles.training import train_classifier

    labels = np.asarray(labels).astype(np.int64)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
    torch.manual_seed(settings.seed)
    module, spec = new_model(settings.arch)
    x = spec.encoder()({"image": np.asarray(images, dtype=np.float32)})
    y = torch.as_tensor(labels)
    train = train_split(len(images), settings.seed, settings.train_fraction)
    rest = np.setdiff1d(np.arange(len(images)), train)
    stages = [(settings.epochs, settings.lr), (settings.decay_epochs, settings.decay_lr)]
    seconds = 0.0
    for i, (epochs, lr) in enumerate(s for s in stages if s[0] > 0):
        report = train_classifier(module, x[train], y[train], epochs=epochs, lr=lr,
                                  weight_decay=settings.weight_decay, seed=settings.seed + i,
                                  batch_size=settings.batch_size, optimizer="adam",
                                  eval_set=(x[rest], y[rest]))
        seconds += report.seconds
    info = {"train_accuracy": report.train_accuracy, "heldout_accuracy": report.eval_accuracy,
            "seconds": seconds, "epochs": settings.epochs + settings.decay_epochs,
            "train_rows": int(len(train))}
    return module, spec, info


def cached_image_network(program: str, images: np.ndarray, labels: np.ndarray,
                         settings: ImageTrainSettings,
                         root: Path | None = None) -> tuple[Path, dict]:
    """:func:`train_image_network` behind the cache, keyed by the settings and by
    digests of the images and labels (``program`` is recorded for reading)."""
    def digest(a: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:20]

    key = {"program": program, **asdict(settings), "split_stream": SPLIT_STREAM,
           "images": digest(np.asarray(images, dtype=np.float32)),
           "labels": digest(np.asarray(labels).astype(np.int8)), "rows": int(len(images))}
    return cached_model(key, settings.arch,
                        lambda: train_image_network(images, labels, settings), root)


# ---------------------------------------------------------------------------
# command line


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train a network on a hidden program's labels",
                            description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--domain", default="grid:113x113", help="input domain (grid:113x113)")
    parser.add_argument("--program", required=True,
                        help="hidden program: Python expression over the inputs "
                             "(e.g. 'x*x < 200*sqrt(y)') or a .py file defining label(x, y)")
    parser.add_argument("--arch", default="mlp", choices=ARCHES)
    parser.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int,
                        help=f"training epochs (default: {DEFAULT_EPOCHS['mlp']} for the MLP, "
                             f"{DEFAULT_EPOCHS['casper-transformer']} for the transformer)")
    parser.add_argument("--hidden", default="256,256",
                        help="MLP hidden widths, e.g. 256,256")
    parser.add_argument("--lr", type=float, default=TrainSettings.lr, help="MLP learning rate")
    parser.set_defaults(run=run_train)


def parse_widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise ValueError(f"--hidden takes comma-separated integers, got {text!r}") from None
    if not widths:
        raise ValueError("--hidden needs at least one width")
    return widths


def run_train(args) -> int:
    from oracles.architectures import save_model

    domain = parse_domain(args.domain)
    hidden = load_hidden(args.program, domain.names)  # ValueError: a clear message
    epochs = DEFAULT_EPOCHS[args.arch] if args.epochs is None else args.epochs
    settings = TrainSettings(arch=args.arch, seed=args.seed, epochs=epochs,
                             hidden=parse_widths(args.hidden), lr=args.lr)
    labels = hidden.evaluate(domain.all_inputs())
    print(f"hidden program over {domain}: {hidden.source} ({labels.mean():.1%} positive)")
    start = time.perf_counter()
    module, spec, info = train_network(hidden, domain, settings)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(out, module, spec.arch, spec.config)
    name = f"{spec.arch} {list(settings.hidden)}" if settings.arch == "mlp" else spec.arch
    print(f"trained {name} for {info['epochs']} epochs in "
          f"{time.perf_counter() - start:.1f} s on {domain.size // 2:,} of {domain.size:,} "
          f"points (seed {settings.seed})")
    print(f"accuracy: train {info['train_accuracy']:.4f}, held-out half "
          f"{info['heldout_accuracy']:.4f}; agreement with the program on the whole domain "
          f"{info['agreement']:.4f}")
    print(f"wrote {out}", file=sys.stdout)
    return 0
