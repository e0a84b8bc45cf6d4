"""The one error boundary of the command lines: every expected failure is one line."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pimc_core.cli.boundary import run_command
from pimc_core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _raise(exc: BaseException):
    def command():
        raise exc

    return command


@pytest.mark.parametrize("exc, status, line", [
    (ConfigError("--block must be a positive integer (got 0)"), 2, "prog: error: --block must be a positive integer (got 0)"),
    (OSError(errno.ENOSPC, "No space left on device", "/out/classes.tif"), 2,
     "prog: error: /out/classes.tif: cannot write (no space left on device)"),
    (PermissionError(errno.EACCES, "Permission denied", "/out"), 2, "prog: error: /out: cannot write (permission denied)"),
    (MemoryError(), 2, "prog: error: out of memory (try a smaller region, --block or --batch)"),
    (KeyboardInterrupt(), 130, "prog: interrupted; nothing was written"),
    (ValueError("boom\nsecond line"), 1, "prog: internal error: ValueError: boom (a bug in PIMC; run with PIMC_DEBUG=1"),
])
def test_each_way_out_is_one_line(exc, status, line, capsys, monkeypatch):
    monkeypatch.delenv("PIMC_DEBUG", raising=False)
    assert run_command("prog", _raise(exc), interrupted="nothing was written") == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(line)
    assert "Traceback" not in err


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("PIMC_DEBUG", "1")
    with pytest.raises(ConfigError):
        run_command("prog", _raise(ConfigError("x")))


def test_sigterm_removes_the_output_being_written(tmp_path):
    """SIGTERM in the middle of a write: exit 143, one line, nothing left in the folder."""
    script = (
        "import sys, time\n"
        "from pimc_core.cli.boundary import run_command\n"
        "from pimc_core.io.atomic import atomic_path\n"
        "def work():\n"
        f"    with atomic_path({str(tmp_path / 'map.tif')!r}) as tmp:\n"
        "        tmp.write_text('half')\n"
        "        print('writing', flush=True)\n"
        "        time.sleep(60)\n"
        "sys.exit(run_command('pimc', work))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "writing"
    assert len(os.listdir(tmp_path)) == 1  # the temporary file
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 143
    assert err.strip() == "pimc: terminated; no partial output was left"
    assert os.listdir(tmp_path) == []


def test_an_error_raised_while_handling_an_interrupt_is_that_interrupt(capsys, monkeypatch):
    """A library's clean-up failing under Ctrl-C must not turn the interrupt into an 'internal error'."""
    monkeypatch.delenv("PIMC_DEBUG", raising=False)

    def command():
        try:
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("No GDAL environment exists")

    assert run_command("prog", command) == 130
    assert capsys.readouterr().err == "prog: interrupted; no partial output was left\n"
