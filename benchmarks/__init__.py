"""Benchmarks run by ``make bench`` (``python -m benchmarks.run_all``)."""


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM from /proc/self/status.

    Not ``resource.getrusage(...).ru_maxrss``: Linux keeps that across fork and exec, so a child
    started by a process that once used 4 GB reports at least 4 GB whatever it does itself.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
