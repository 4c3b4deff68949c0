"""Where benchmark tasks run: in this process, a local process pool, or Ray.

An executor maps a picklable function over items and yields ``(item,
result)`` pairs as tasks finish (in completion order; the runner orders
results by task itself, so the outcome does not depend on which finishes
first).  Every task is seeded by its job alone, so a pool gives the same
results as serial runs whenever the searches finish within their time limits.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any


class SerialExecutor:
    """Run tasks one after another in this process."""

    name = "serial"
    workers = 1

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        for item in items:
            yield item, fn(item)

    def close(self) -> None:
        pass


def _init_worker(threads: int) -> None:
    """``threads`` BLAS / torch threads per worker, so N workers use N cores.  Torch is
    told through the environment when it is not imported yet (importing it costs
    seconds; tasks that need it import it themselves)."""
    import os
    import sys
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        pass


class PoolExecutor:
    """A local process pool of ``workers`` processes (spawned, so no state is shared)."""

    name = "pool"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self._pool = ProcessPoolExecutor(max_workers=workers,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(1,))

    def map(self, fn, items):
        futures = {self._pool.submit(fn, item): item for item in items}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Tasks as Ray remote functions on the cluster at ``address`` ("auto", "local",
    or "ray://host:10001"); each task asks for one CPU."""

    name = "ray"

    def __init__(self, address: str, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("--ray-address needs Ray: pip install -e .[ray]") from None
        self._ray = ray
        if not ray.is_initialized():
            if address == "local":
                ray.init(num_cpus=workers or None, include_dashboard=False,
                         log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        self.workers = workers or int(ray.cluster_resources().get("CPU", 1))

    def map(self, fn, items):
        ray = self._ray
        remote = ray.remote(num_cpus=1)(_ray_call)
        refs = {remote.remote(fn, item): item for item in items}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield refs[ref], ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref)

    def close(self) -> None:
        self._ray.shutdown()


def _ray_call(fn, item):
    _init_worker(1)
    return fn(item)


def make_executor(workers: int = 1, ray_address: str | None = None):
    if ray_address:
        return RayExecutor(ray_address, workers if workers > 1 else None)
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    return SerialExecutor() if workers == 1 else PoolExecutor(workers)
