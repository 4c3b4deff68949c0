"""Run a suite: oracle labels per task, the engine (and peers) on them, scored.

For each task the runner makes the oracle's labels on the whole domain --
the hidden program's own (``source="labels"``), or the predictions of an MLP
trained on a fixed half of the domain (``source="network"``, trained once and
cached, see :func:`benchmarks.train_cli.cached_network`) -- and hands the
engine those labels and the inputs, nothing else.  The hidden program is used
again only to score what came back:

* ``exact``: the recovered program equals the hidden one on every point;
* ``agreement``: fraction of points where it equals the hidden program;
* ``fidelity``: fraction of points where it equals the oracle's labels
  (``fit_fidelity`` / ``holdout_fidelity``: on the rows the search fitted /
  held out);
* ``size``, ``seconds`` (wall time of the search), ``programs_per_second``.

Image tasks (domain ``mnist``, :mod:`benchmarks.images_suite`) train the
challenge-1 CNN instead of an MLP, and score ``agreement`` on the images the
network did not train on, ``exact`` meaning at least 99.5% there.

Results go to ``out/``: one JSON file per finished task under ``tasks/``
(a rerun skips tasks whose file holds a result of the same configuration,
and where only the peers differ, keeps the stored engine and peer rows and
runs only the peers missing: a peer added to a finished run costs its own
time alone),
and after every task ``results.json``, ``results.csv`` (one row per task and
method), ``table.md``, ``recovery.svg`` (exact recovery by atoms, per
method) and ``fidelity.svg`` (fidelity against size), all written atomically.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.images_suite import IMAGE_DOMAINS, IMAGE_PEERS, ImageBenchSettings
from benchmarks.suites import CASPER_DOMAINS, Task
from benchmarks.train_cli import TrainSettings

SOURCES = ("labels", "network")
CSV_FIELDS = ("suite", "task", "atoms", "kinds", "hidden", "source", "method", "exact",
              "agreement", "agreement_all", "fidelity", "fit_fidelity", "holdout_fidelity",
              "size", "seconds", "cpu_seconds", "load", "programs_evaluated",
              "programs_per_second", "program", "oracle_agreement", "error")


@dataclass(frozen=True)
class BenchConfig:
    """What a benchmark run does to each task (recorded with each result)."""

    source: str = "labels"
    seed: int = 0
    time_limit: float = 60.0
    peers: tuple[str, ...] = ()
    synth_options: dict = field(default_factory=dict)  # extra Synthesizer parameters
    train: TrainSettings = field(default_factory=TrainSettings)
    cache_dir: str | None = None
    images: ImageBenchSettings | None = None  # image tasks (default settings when None)
    # grid tasks from networks: weigh each label by the network's confidence in it
    confidence: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; choose one of {SOURCES}")
        if not self.time_limit > 0:
            raise ValueError(f"the time limit must be positive, got {self.time_limit}")
        from benchmarks.peers import PEERS
        known = dict.fromkeys(PEERS + IMAGE_PEERS)
        unknown = [p for p in self.peers if p not in known]
        if unknown:
            raise ValueError(f"unknown peers {unknown}; known: {', '.join(known)}")

    def fingerprint(self) -> dict:
        """The settings a stored result must share to be reused on resume."""
        out = {"source": self.source, "seed": self.seed, "time_limit": self.time_limit,
               "peers": list(self.peers), "synth_options": dict(sorted(
                   self.synth_options.items()))}
        if self.source == "network" and self.images is None:
            out["train"] = {k: list(v) if isinstance(v, tuple) else v
                            for k, v in asdict(self.train).items()}
            out["confidence"] = self.confidence
        if self.images is not None:
            out["images"] = self.images.to_json()
        return out


@dataclass(frozen=True)
class Job:
    task: Task
    config: BenchConfig
    #: rows of a stored run of the same settings but other peers, by method
    kept: tuple[tuple[str, dict], ...] = ()


def run_job(job: Job) -> dict:
    """Run one task (engine, then peers), reusing the rows ``job`` keeps;
    never raises for a task's own failure."""
    task, config, kept = job.task, job.config, dict(job.kept)
    doc = {"key": task.key, "task": task.to_json(), "config": config.fingerprint(),
           "network": None, "results": []}
    try:
        run = prepare_run(task, config)
        doc["network"] = run.network
        doc["results"].append(kept.get("synth") or run.engine())
        for peer in _peers_for(task, config.peers):
            try:
                doc["results"].append(kept.get(peer) or run.peer(peer))
            except Exception as err:  # a peer's failure is its row, not the run's end
                doc["results"].append({"method": peer, "error": _describe(err)})
    except Exception as err:
        doc["error"] = _describe(err)
    return doc


def _peers_for(task: Task, peers: Sequence[str]) -> list[str]:
    """The peers of ``peers`` that run on ``task``'s kind of input (grid or image)."""
    from benchmarks.peers import PEERS
    return [p for p in peers if p in (IMAGE_PEERS if task.on_images else PEERS)]


def prepare_run(task: Task, config: BenchConfig):
    """The task's oracle labels, ready for ``engine()`` and ``peer(name)`` (each a
    result row); ``network`` describes the trained network, if any."""
    if task.domain in CASPER_DOMAINS:
        from benchmarks.casper_suite import RUNS
        return RUNS[task.domain](task, config)
    if task.domain in IMAGE_DOMAINS:
        from benchmarks.images_suite import ImageRun
        return ImageRun(task, config)
    return GridRun(task, config)


class GridRun:
    """A task over a grid domain: every point is a query."""

    def __init__(self, task: Task, config: BenchConfig) -> None:
        self.config = config
        self.env = task.grid().all_inputs()
        self.truth = task.hidden().evaluate(self.env)
        self.labels, self.network, self.weights = _oracle_labels(task, config, self.env,
                                                                 self.truth)

    def engine(self) -> dict:
        return _run_engine(self.env, self.labels, self.truth, self.config, self.weights)

    def peer(self, name: str) -> dict:
        from benchmarks.peers import run_peer
        return run_peer(name, self.env, self.labels, self.truth,
                        time_limit=self.config.time_limit, seed=self.config.seed)


def _oracle_labels(task: Task, config: BenchConfig, env, truth):
    """The labels the engine searches, a description of the network, and the
    labels' weights (None: every label counts the same)."""
    if config.source == "labels":
        return truth, None, None
    from benchmarks.train_cli import cached_network
    from oracles.torch_oracle import TorchOracle
    from synth.confidence import oracle_weights

    start = time.perf_counter()
    root = Path(config.cache_dir) if config.cache_dir else None
    path, info = cached_network(task.program, task.domain, config.train, root)
    oracle = TorchOracle.from_file(path, domain=task.grid())
    labels = oracle.labels(env)
    weights = oracle_weights(oracle, env) if config.confidence else None
    network = {"checkpoint": str(path), **info,
               "oracle_agreement": float(np.mean(labels == truth)),
               "load_seconds": time.perf_counter() - start}
    return labels, network, weights


def _run_engine(env, labels, truth, config: BenchConfig, weights=None) -> dict:
    from synth.search import Synthesizer

    # CPU seconds: a task's result must not depend on what else the machine runs
    synth = Synthesizer(time_limit=config.time_limit, seed=config.seed, clock="cpu",
                        **config.synth_options)
    start, cpu = time.perf_counter(), time.process_time()
    # the engine sees the inputs and the oracle's answers only (labels, and how sure)
    synth.fit(env, labels, sample_weight=weights)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    best, stats = synth.best_, synth.result_.stats
    pred = synth.predict(env)
    agreement = float(np.mean(pred == truth))
    return {"method": "synth", "program": str(best.program), "python": best.python,
            "size": best.size, "fidelity": float(np.mean(pred == labels)),
            "fit_fidelity": best.fidelity, "holdout_fidelity": best.holdout_fidelity,
            "holdout_rows": len(synth.holdout_rows_), "agreement": agreement, "exact": agreement == 1.0, "seconds": seconds,
            "cpu_seconds": cpu, "load": _load(), "programs_evaluated": stats.programs_evaluated,
            "programs_per_second": stats.programs_per_second,
            "max_feature_size": stats.max_feature_size, "interrupted": stats.interrupted,
            "front": front_rows(synth.result_.pareto, synth.result_.as_fitted),
            "error": None}


def front_rows(*fronts) -> list[list]:
    """``[size, fit fidelity, held-out fidelity, program]`` of every program on
    ``fronts`` (a result's Pareto front, its front as fitted, ...), each program
    once, by size: what :func:`benchmarks.report.best_within` compares at a size."""
    rows = {str(c.program): [c.size, c.fidelity, c.holdout_fidelity, str(c.program)]
            for front in fronts for c in front}
    return sorted(rows.values(), key=lambda r: r[0])


def _load() -> float | None:
    """The machine's 1-minute load average (searches have wall-clock limits, so a loaded
    machine explores less in the same time)."""
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return None


def _describe(err: BaseException) -> str:
    tb = traceback.extract_tb(err.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return f"{type(err).__name__}: {err}{where}"


# ---------------------------------------------------------------------------
# running a suite


def run_benchmark(tasks: Sequence[Task], config: BenchConfig, out: str | os.PathLike, *,
                  executor=None, progress: bool = True) -> list[dict]:
    """Run ``tasks`` (skipping those already done in ``out``); return one document per
    task, in the order of ``tasks``."""
    from benchmarks.executors import SerialExecutor
    from benchmarks.report import fidelity_svg, markdown_table, recovery_svg
    from synth.results import write_json_atomic

    out = Path(out)
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task names must be unique within a run")
    done: dict[str, dict] = {}
    for task in tasks:
        stored = load_task_result(out, task, config)
        if stored is not None:
            done[task.key] = stored
    todo = [Job(t, config, reusable_rows(out, t, config)) for t in tasks if t.key not in done]
    executor = executor or SerialExecutor()
    info = {**provenance(), "executor": executor.name, "workers": executor.workers}
    bar = _bar(len(tasks), len(done), progress, executor)

    def flush() -> None:
        docs = [done[k] for k in keys if k in done]
        write_json_atomic(out / "results.json", {"config": config.fingerprint(),
                                                  "provenance": info, "tasks": docs})
        write_text_atomic(out / "results.csv", to_csv(docs))
        write_text_atomic(out / "table.md", markdown_table(docs, config.fingerprint()))
        write_text_atomic(out / "recovery.svg", recovery_svg(docs))
        write_text_atomic(out / "fidelity.svg", fidelity_svg(docs))

    try:
        for job, doc in executor.map(run_job, todo):
            done[job.task.key] = doc
            if "error" not in doc:  # failed tasks are retried on the next run
                write_json_atomic(_task_path(out, job.task), doc)
            flush()
            if bar is not None:
                bar.set_postfix_str(_summary(doc), refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    flush()
    return [done[k] for k in keys]


def provenance() -> dict:
    """Which engine ran: git commit and modified engine files (read-only git), versions,
    CPUs.  Informational; resuming does not compare it."""
    import platform
    import subprocess

    root = Path(__file__).resolve().parent.parent
    info: dict = {"python": platform.python_version(), "numpy": np.__version__,
                  "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        def git(*a):
            return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True,
                                  timeout=10).stdout
        info["commit"] = git("rev-parse", "HEAD").strip() or None
        info["modified"] = [line[3:] for line in git("status", "--porcelain", "--", "synth",
                                                     "dsl", "oracles").splitlines()]
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def load_task_result(out: Path, task: Task, config: BenchConfig) -> dict | None:
    """The stored result of ``task`` under ``config`` in ``out``, if any."""
    doc = _stored(out, task)
    return doc if doc is not None and doc["config"] == _normalise(config.fingerprint()) else None


def reusable_rows(out: Path, task: Task, config: BenchConfig) -> tuple[tuple[str, dict], ...]:
    """The rows (method, row) of a stored result of ``task`` whose settings
    differ from ``config`` in the peers alone: the engine's and those of the
    peers ``config`` names, failed rows left out (they run again)."""
    doc = _stored(out, task)
    if doc is None:
        return ()
    settings = {k: v for k, v in _normalise(config.fingerprint()).items() if k != "peers"}
    if {k: v for k, v in doc["config"].items() if k != "peers"} != settings:
        return ()
    wanted = {"synth", *config.peers}
    return tuple((r["method"], r) for r in doc.get("results", [])
                 if r.get("method") in wanted and not r.get("error"))


def _stored(out: Path, task: Task) -> dict | None:
    """The stored, error-free result of ``task`` in ``out``, under any settings."""
    import json
    path = _task_path(out, task)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if ("error" in doc or not isinstance(doc.get("config"), dict)
            or doc.get("task", {}).get("program") != task.program):
        return None
    return doc


def _normalise(obj):
    import json
    return json.loads(json.dumps(obj))


def _task_path(out: Path, task: Task) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in task.key)
    return out / "tasks" / f"{safe}.json"


def _bar(total: int, initial: int, progress: bool, executor):
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="task", file=sys.stderr, dynamic_ncols=True,
                desc=f"bench ({executor.name}, {executor.workers} worker"
                     f"{'s' if executor.workers != 1 else ''})")


def _summary(doc: dict) -> str:
    if "error" in doc:
        return f"{doc['key']}: error"
    r = doc["results"][0]
    if r.get("agreement") is None:
        return f"{doc['key']}: fidelity {r['fidelity']:.4f}"
    return f"{doc['key']}: {'exact' if r.get('exact') else 'agree %.4f' % r['agreement']}"


def rows(docs: Sequence[dict]) -> list[dict]:
    """One flat row per task and method."""
    out = []
    for doc in docs:
        task = doc["task"]
        base = {"suite": task["suite"], "task": task["name"], "atoms": task["atoms"],
                "kinds": " ".join(task["kinds"]), "hidden": task["program"],
                "source": doc["config"]["source"],
                "oracle_agreement": (doc.get("network") or {}).get("oracle_agreement")}
        if "error" in doc:
            out.append({**base, "method": "synth", "error": doc["error"]})
        for r in doc["results"]:
            out.append({**base, **{k: r.get(k) for k in CSV_FIELDS if k in r}})
    return out


def to_csv(docs: Sequence[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows(docs):
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_FIELDS})
    return buf.getvalue()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
