"""Map inference on several processes or a cluster, with Dask.

:class:`DaskExecutor` runs the windows of :func:`pimc_core.maps.engine.run_inference`,
:func:`~pimc_core.maps.engine.cluster_map` and :func:`~pimc_core.maps.engine.similarity_map` as
Dask tasks, on an embedded ``LocalCluster`` (``workers`` processes, one thread each) or on an
existing scheduler (``tcp://host:8786``)::

    with DaskExecutor(workers=4) as ex:
        run_inference(ts, "crops.pimc", region, "maps/", executor=ex)

How the work is split:

* Once per run the client *scatters* one context to every worker: the :class:`TimeSeries`
  (paths and metadata only — it holds no open file), the region (its polygons), the model
  *reference* and the job. Tasks then carry only their window.
* Each worker loads the model itself, once per run (``load_pixel_model(path)``, or calls the
  picklable factory, or unpickles a small model such as the baseline), calls ``prepare`` on it,
  and keeps it while the run lasts. A live torch model is never shipped per task.
* A task reads its window from the source files, builds the series, predicts, and **returns its
  window's output arrays** to the client, which alone writes them into the temporary GeoTIFFs
  and commits them exactly as the in-process run does.

Why the client writes (rather than workers writing per-window GeoTIFFs to be mosaicked):
GDAL cannot have several writers on one GTiff; per-window files would cost a second full write
and read of every map (the mosaic), need an output folder every worker can write to, and leave
fragments to clean up on failure. Returned window arrays are small (``block² × bands`` values,
e.g. 256² × 4 float32 = 1 MiB) and the client keeps at most ``max_in_flight`` of them
(default 2 × workers) — tasks are submitted as earlier ones are consumed, in window order — so
client memory is bounded by ``block``, ``bands`` and ``workers``, not by the raster. Consuming
in window order makes the files byte-identical to the in-process run. Workers only need read
access to the source (a shared file system on a remote cluster); the outputs are local to the
client.

Threads: Dask's nannies start workers with ``OMP_NUM_THREADS=MKL_NUM_THREADS=1``, so N workers
with one thread each use N cores (torch included) instead of oversubscribing them.

Cancel and errors: the cancel check runs in the client while it waits (about every 0.2 s); on
cancel, an exception in a task (re-raised in the client with its type and message) or a
KeyboardInterrupt, the pending tasks are cancelled and no output is left.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Callable, Iterator, Sequence

from rasterio.windows import Window

from pimc_core.errors import ConfigError

__all__ = ["DaskExecutor", "dask_available"]


def dask_available() -> bool:
    """True when ``dask.distributed`` can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


class DaskExecutor:
    """Run map windows as Dask tasks (a context manager).

    Args:
        workers: processes of the embedded ``LocalCluster`` (ignored with ``scheduler``).
        scheduler: address of an existing scheduler, e.g. ``tcp://host:8786``; its workers must
            read the source paths and import ``pimc_core`` (and the model package).
        threads_per_worker: threads per worker process (1: the model's own threads do the rest).
        max_in_flight: tasks submitted ahead of the one the client waits for (default:
            2 × workers); bounds client memory.
        memory_limit: per-worker memory limit of the LocalCluster (``"auto"``, ``"4GiB"``, 0 = none).
        poll: seconds between cancel checks while waiting.
        connect_timeout: seconds to wait for ``scheduler``.

    Raises:
        ConfigError: dask is not installed, bad arguments, or the scheduler cannot be reached.
    """

    remote = True

    def __init__(
        self,
        workers: int = 2,
        scheduler: str | None = None,
        *,
        threads_per_worker: int = 1,
        max_in_flight: int | None = None,
        memory_limit: str | int = "auto",
        poll: float = 0.2,
        connect_timeout: float = 10.0,
    ) -> None:
        if scheduler is None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"workers must be a positive integer (got {workers!r})")
        if max_in_flight is not None and (not isinstance(max_in_flight, int) or max_in_flight < 1):
            raise ConfigError(f"max_in_flight must be a positive integer (got {max_in_flight!r})")
        if not dask_available():
            raise ConfigError("Dask is not installed: pip install 'dask[distributed]' (see requirements.txt)")
        self.workers = int(workers)
        self.scheduler = scheduler
        self.threads_per_worker = int(threads_per_worker)
        self._max_in_flight = max_in_flight
        self.memory_limit = memory_limit
        self.poll = float(poll)
        self.connect_timeout = float(connect_timeout)
        self.cluster = None
        self.client = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "DaskExecutor":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        from distributed import Client, LocalCluster

        if self.client is not None:
            return
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=f"{self.connect_timeout}s")
            except (OSError, TimeoutError) as e:
                raise ConfigError(f"cannot reach the Dask scheduler {self.scheduler} ({e})") from None
            except ValueError as e:  # distributed's address parser: no port, an unknown protocol
                raise ConfigError(f"--scheduler: {self.scheduler!r} is not a scheduler address, e.g. tcp://host:8786 "
                                  f"({e})") from None
        else:
            self.cluster = LocalCluster(
                n_workers=self.workers, threads_per_worker=self.threads_per_worker, processes=True,
                memory_limit=self.memory_limit, dashboard_address=":0", silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    @property
    def n_workers(self) -> int:
        if self.client is None:
            return self.workers
        try:
            return max(1, len(self.client.scheduler_info()["workers"]))
        except Exception:  # pragma: no cover - scheduler gone
            return self.workers

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight or 2 * self.n_workers

    def __repr__(self) -> str:
        where = self.scheduler or f"LocalCluster({self.workers} workers)"
        return f"DaskExecutor({where})"

    # ------------------------------------------------------------------ the engine's interface
    def map_windows(self, ctx: Any, model: Any, windows: Sequence[Window],
                    check: Callable[[], None]) -> Iterator[Any]:
        """Results of the window tasks, in window order, at most ``max_in_flight`` ahead."""
        from distributed import wait

        from pimc_core.maps.executors import window_task

        if self.client is None:
            self.start()
        client = self.client
        try:
            ctx_future = client.scatter(ctx, broadcast=True, hash=False)
        except Exception as e:  # pickling errors surface here
            raise ConfigError(
                f"cannot send the model/source to the Dask workers ({type(e).__name__}: {e}); pass a model "
                f"file path or a picklable factory"
            ) from None
        pending: collections.deque = collections.deque()
        todo = iter(windows)
        try:
            for win in todo:
                pending.append(client.submit(window_task, ctx_future, win, pure=False))
                if len(pending) >= self.max_in_flight:
                    break
            while pending:
                fut = pending[0]
                while True:
                    check()
                    try:
                        wait(fut, timeout=self.poll)
                        break
                    except TimeoutError:
                        continue
                result = fut.result()  # re-raises a task's exception here
                pending.popleft()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(client.submit(window_task, ctx_future, nxt, pure=False))
                yield result
        finally:
            for f in pending:
                f.cancel()
            pending.clear()
            ctx_future.release()
