"""Map outputs appear whole or not at all, as a user of ``pimc classify`` sees it: SIGTERM in the
middle of a run, what a killed run left, a full disk. Each runs ``pimc`` in its own process."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pimc_core.datasets.synthetic import make_synthetic
from pimc_core.io.atomic import PART_MARK
from tests.conftest import left_nothing

ROOT = Path(__file__).resolve().parent.parent
PIMC = [sys.executable, "-m", "pimc_core.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop("PIMC_DEBUG", None)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("s32"), size=32, n_dates=8, seed=2)


def classify(manifest, out, *extra, prelude: str = "") -> subprocess.CompletedProcess:
    """``pimc classify`` with the baseline model in a new process (``prelude``: Python run first)."""
    args = [str(manifest), "--model", "builtin:nearest-centroid", "--out", str(out), "--quiet", *map(str, extra)]
    if prelude:
        script = prelude + "\nimport sys\nfrom pimc_core.cli import main\nsys.exit(main(sys.argv[1:]))\n"
        cmd = [sys.executable, "-c", script, "classify", *args]
    else:
        cmd = [*PIMC, "classify", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_sigterm_mid_run_leaves_the_folder_as_it_was(tmp_path):
    stack = make_synthetic(tmp_path / "s128", size=128, n_dates=8, seed=3)
    out = tmp_path / "maps"
    out.mkdir()
    (out / "classes.tif").write_bytes(b"an older map")
    (out / "notes.txt").write_text("kept")
    before = snapshot(out)
    proc = subprocess.Popen([*PIMC, "classify", str(stack.manifest), "--model", "builtin:nearest-centroid",
                             "--out", str(out), "--quiet", "--block", "8", "--probabilities"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 120
    while not any(PART_MARK in name for name in os.listdir(out)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no temporary output appeared"
        time.sleep(0.05)
    time.sleep(0.3)  # some windows written
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert one_line(err) == "pimc: terminated; no partial output was left"
    assert snapshot(out) == before


SIGTERM_IN_RASTERIO_ENV = """
import os, signal
import rasterio.env
from pimc_core.io.timeseries import TimeSeries

read, calls = TimeSeries.read, []

def read_then_sigterm(self, *args, **kwargs):  # SIGTERM inside the exit of a nested rasterio Env
    calls.append(1)
    out = read(self, *args, **kwargs)
    if len(calls) == 3:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            raise rasterio.env.EnvError("No GDAL environment exists")  # what the outer Env exit raises
    return out

TimeSeries.read = read_then_sigterm
"""


def test_sigterm_inside_a_rasterio_environment_is_still_a_clean_stop(small, tmp_path):
    """rasterio's Env is not re-entrant: a signal inside a nested Env's exit makes the outer exit
    raise EnvError; the run still ends as terminated (143, one line) and leaves nothing."""
    out = tmp_path / "maps"
    res = classify(small.manifest, out, "--block", "8", prelude=SIGTERM_IN_RASTERIO_ENV)
    assert res.returncode == 143, res.stderr
    assert one_line(res.stderr) == "pimc: terminated; no partial output was left"
    assert left_nothing(out)


def test_a_run_removes_what_a_killed_run_left(small, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "maps"
    out.mkdir()
    stale = [out / f".classes.tif{PART_MARK}{dead.pid}-0badc0de.part.tif",
             out / f".classes.tif{PART_MARK}{dead.pid}-0badc0de.part.tif.aux.xml",
             out / f".confidence.tif{PART_MARK}{dead.pid}-12345678.tif"]
    for p in stale:
        p.write_bytes(b"left by kill -9")
    mine = out / f".other.tif{PART_MARK}{os.getpid()}-abcdef01.tif"  # a live writer's: kept
    mine.write_bytes(b"being written")
    res = classify(small.manifest, out, "--block", "16")
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(out)) == sorted(["classes.qml", "classes.tif", "confidence.qml", "confidence.tif",
                                              "uncertainty.qml", "uncertainty.tif", mine.name])


FULL_DISK = """
import rasterio.io, rasterio.shutil
from rasterio._err import CPLE_AppDefinedError
from rasterio.errors import RasterioIOError

def full_disk(*args, **kwargs):  # what rasterio raises when GDAL cannot write a tile: the cause chained
    try:
        try:
            raise CPLE_AppDefinedError(3, 1, "_tiffWriteProc:No space left on device")
        except CPLE_AppDefinedError as why:
            raise CPLE_AppDefinedError(3, 1, "TIFFAppendToStrip:Write error at scanline 0") from why
    except CPLE_AppDefinedError as e:
        raise RasterioIOError("Write failed. See previous exception for details.") from e

{patch} = full_disk
"""


@pytest.mark.parametrize("patch, name", [
    ("rasterio.io.DatasetWriter.write", "classes.tif"),  # a window of the first product
    ("rasterio.shutil.copy", "classes.tif"),  # the conversion to COG
])
def test_full_disk_is_one_line_naming_the_file_and_leaves_nothing(small, tmp_path, patch, name):
    out = tmp_path / "maps"
    res = classify(small.manifest, out, "--probabilities", prelude=FULL_DISK.format(patch=patch))
    assert res.returncode == 2
    assert one_line(res.stderr) == f"pimc: error: {out / name}: cannot write (no space left on device)"
    assert left_nothing(out)


def test_full_disk_while_writing_a_style(small, tmp_path):
    prelude = (
        "import errno, pathlib\n"
        "def full(self, *a, **k):\n"
        f"    raise OSError({errno.ENOSPC}, 'No space left on device', str(self))\n"
        "pathlib.Path.write_text = full\n"
    )
    out = tmp_path / "maps"
    res = classify(small.manifest, out, prelude=prelude)
    assert res.returncode == 2
    assert one_line(res.stderr) == f"pimc: error: {out / 'classes.qml'}: cannot write (no space left on device)"
    assert left_nothing(out)


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE (POSIX)")
@pytest.mark.parametrize("limit", [3_000, 30_000])
def test_a_real_write_failure_of_gdal_is_one_line(small, tmp_path, limit):
    """GDAL really failing to write (the file-size limit of the process: EFBIG, as ENOSPC would):
    one line naming a map of the run, no GDAL message on stderr, nothing left."""
    prelude = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
    )
    out = tmp_path / "maps"
    out.mkdir()
    res = classify(small.manifest, out, "--probabilities", "--block", "8", prelude=prelude)
    assert res.returncode == 2
    line = one_line(res.stderr)
    assert line.startswith(f"pimc: error: {out}{os.sep}") and line.endswith(f"cannot write ({os.strerror(errno.EFBIG)})")
    assert left_nothing(out)
