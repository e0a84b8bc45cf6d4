"""The CPU worker threads that compute chunks of recurrence plots side by side.

Whole chunks go to a pool of ``torch.get_num_threads()`` threads whose torch kernels run
single-threaded (each worker sets only its own OpenMP thread count; no global torch setting is
ever changed): robust when other processes load the CPU, where per-kernel OpenMP fork/joins
collapse. See the comment above :data:`PARALLEL_GRAIN` for the reasons and measurements.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import torch

__all__ = ["PARALLEL_GRAIN", "Pool", "chunk_plan", "cpu_pool", "run_chunks"]


# CPU parallelism. Per chunk the work is a handful of small torch/numpy kernels. Letting each
# kernel fork/join torch's OpenMP team costs little on an idle machine but collapses when other
# processes compete for the cores (a join waits for a descheduled team member: measured 5-20x
# slower than one thread on a loaded 2-core VM). Instead, whole chunks are handed to a pool of
# worker threads whose torch kernels run single-threaded, so nothing waits for anything but the
# end of the call, and a worker that gets the CPU simply takes the next chunk (torch kernels and
# numpy sorts release the GIL). The pool has torch.get_num_threads() workers (the caller's
# thread budget); with one thread, on CUDA, or for jobs below torch's parallel grain, chunks
# run inline in the calling thread.
#
# No global thread setting is ever changed. torch.set_num_threads is process-wide (it stores
# the count every thread starts from, resizes torch's pthreadpool, clears the oneDNN cache),
# so it is not called. What torch's CPU kernels read (at::get_num_threads() ==
# omp_get_max_threads()) is a per-thread OpenMP setting (the nthreads-var ICV of the calling
# thread): each worker, once, sets its own to 1 by calling omp_set_num_threads(1) of the OpenMP
# runtime torch is linked with (already loaded: looked up with RTLD_NOLOAD, never loaded
# anew), which changes nothing for any other thread, and checks that torch.get_num_threads()
# then reads 1 in that thread. Where this is not possible (no such runtime found, e.g. a torch
# built without OpenMP, or Windows), the workers run in "small-kernel mode" instead: chunks are
# cut so that no kernel exceeds torch's parallel grain, below which ATen never forks
# (slower: more, smaller kernels); if even one series exceeds the grain, chunks run inline
# with torch's own threading. Chosen over a pure-numpy CPU path (numpy's broadcast subtract
# over 46-element rows is 2.5x slower than torch's: measured) and over small-kernel mode
# everywhere (1.7x more CPU for T=46: per-kernel dispatch dominates).
PARALLEL_GRAIN = 32768  # at::internal::GRAIN_SIZE: kernels of at most this many elements never fork
_OMP_LIB = re.compile(r"^lib(gomp|iomp5|omp)(-[0-9a-f]+)?\.(so(\.[\d.]+)?|dylib)$")  # GNU, Intel, LLVM


@functools.lru_cache(maxsize=1)
def _omp_thread_setters() -> tuple[Callable[[int], None], ...]:
    """``omp_set_num_threads`` of the OpenMP runtimes already loaded, torch's own first."""
    if not hasattr(os, "RTLD_NOLOAD"):  # Windows: cannot look a library up without loading it
        return ()
    torch_dir = os.path.dirname(os.path.realpath(torch.__file__))
    paths: list[str] = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:  # "address perms offset dev inode [path]"
                fields_ = line.split(None, 5)
                path = fields_[5].strip() if len(fields_) == 6 else ""
                if path.startswith("/") and _OMP_LIB.match(os.path.basename(path)) and path not in paths:
                    paths.append(path)
    except OSError:  # macOS: no /proc; torch wheels ship their runtime in torch/lib
        lib_dir = os.path.join(torch_dir, "lib")
        try:
            paths = [os.path.join(lib_dir, n) for n in sorted(os.listdir(lib_dir)) if _OMP_LIB.match(n)]
        except OSError:
            paths = []
    paths.sort(key=lambda p: not os.path.realpath(p).startswith(torch_dir))
    setters = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            fn = lib.omp_set_num_threads
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], None
        setters.append(fn)
    return tuple(setters)


def _make_this_thread_single_threaded() -> bool:
    """Make torch kernels called from *this* (worker) thread single-threaded; True if done.

    Touches only this thread's OpenMP setting (see the comment above ``PARALLEL_GRAIN``).
    """
    torch.get_num_threads()  # torch's lazy per-thread init first: it would reset the setting below
    if torch.get_num_threads() == 1:
        return True
    for set_num_threads in _omp_thread_setters():
        set_num_threads(1)
        if torch.get_num_threads() == 1:
            return True
    return False


class Pool:
    """Worker threads for :func:`run_chunks`; ``single_threaded``: each runs torch kernels on one thread."""

    def __init__(self, n_workers: int) -> None:
        self.size, self.pid = n_workers, os.getpid()
        self.executor = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="pimc-recurrence")
        barrier = threading.Barrier(n_workers)

        def init() -> bool:  # each blocks on the barrier, so each runs on its own thread
            try:
                return _make_this_thread_single_threaded()
            finally:
                barrier.wait()

        self.single_threaded = all(f.result() for f in [self.executor.submit(init) for _ in range(n_workers)])


_POOL: Pool | None = None
_POOL_LOCK = threading.Lock()


def cpu_pool(n_workers: int) -> Pool:
    """The shared pool of ``>= n_workers`` worker threads (a forked child makes its own)."""
    global _POOL
    with _POOL_LOCK:
        pool = _POOL
        if pool is not None and pool.size >= n_workers and pool.pid == os.getpid():
            return pool
        old = pool if pool is not None and pool.pid == os.getpid() else None
        _POOL = pool = Pool(n_workers)
    if old is not None:
        old.executor.shutdown(wait=False)
    return pool


def chunk_plan(n_rows: int, rows: int, device: torch.device, kernel_elems: int,
               multiple: int) -> tuple[int, Pool | None, int]:
    """``(rows per chunk, pool or None for inline, workers)`` for ``n_rows`` rows.

    ``rows``: rows per chunk wanted (cache budget); ``kernel_elems``: elements of the largest
    kernel per row (small-kernel mode keeps kernels within the parallel grain);
    ``multiple``: chunk sizes stay multiples of it. Chunks are shrunk so that every worker
    gets some.
    """
    n_workers = torch.get_num_threads() if device.type == "cpu" else 1
    if n_workers <= 1 or n_rows * kernel_elems <= PARALLEL_GRAIN:
        return rows, None, 1  # inline: the caller's kernels are single-threaded or never fork
    pool = cpu_pool(n_workers)
    if not pool.single_threaded:
        cap = PARALLEL_GRAIN // max(1, kernel_elems)
        if cap < multiple:  # one chunk's kernels would fork anyway: torch's own threading
            return rows, None, 1
        rows = min(rows, cap - cap % multiple)
    per_worker = -(-n_rows // n_workers)
    rows = max(multiple, min(rows, per_worker + (-per_worker) % multiple))
    return rows, pool, n_workers


def run_chunks(n_chunks: int, pool: Pool | None, n_workers: int,
               work: Callable[[int, dict[str, torch.Tensor]], None]) -> None:
    """Call ``work(i, scratch)`` for ``i in range(n_chunks)`` (independent chunks).

    Inline when ``pool`` is None; otherwise on ``min(n_workers, n_chunks)`` pool workers taking
    chunks from a shared counter, each with its own ``scratch`` buffers. The first exception
    stops the others and is re-raised here.
    """
    if pool is None:
        scratch: dict[str, torch.Tensor] = {}
        for i in range(n_chunks):
            work(i, scratch)
        return
    counter = iter(range(n_chunks))
    lock = threading.Lock()
    failed = threading.Event()

    def drain() -> None:
        own: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            while not failed.is_set():
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    work(i, own)
                except BaseException:
                    failed.set()
                    raise

    futures = [pool.executor.submit(drain) for _ in range(min(n_workers, n_chunks))]
    for f in futures:
        f.result()

