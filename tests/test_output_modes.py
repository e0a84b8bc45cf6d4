"""Outputs follow the umask: a finished file gets 0666 and a folder 0777 less the umask (0644 /
0755 under umask 022, 0640 / 0750 under 027), however its temporary was created, so colleagues
on a shared drive can open models, maps, styles and figures."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pimc_core.io.atomic import Staging, atomic_path, current_umask, output_folder

COMPAT = Path(__file__).parent / "data" / "compat_89cc375"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def private(tmp: Path) -> None:
    """Write ``tmp`` as ``mkstemp`` does: mode 0600."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"x")
    os.close(fd)


def test_current_umask_reads_the_process_umask(umask):
    assert current_umask() == umask


def test_atomic_outputs_get_the_umask_mode_even_from_private_temporaries(tmp_path, umask):
    with atomic_path(tmp_path / "model.pimc") as tmp:
        private(tmp)
    with Staging(tmp_path) as stage:
        private(stage.path("classes.tif"))
        (stage.path("classes.qml")).write_text("<qgis/>")
        stage.commit()
    folder = output_folder(tmp_path / "run" / "maps")
    for name in ("model.pimc", "classes.tif", "classes.qml"):
        assert mode(tmp_path / name) == 0o666 & ~umask, name
    assert mode(folder) == mode(folder.parent) == 0o777 & ~umask


@pytest.mark.parametrize("mask", ["022", "027"])
def test_maps_and_figures_of_the_command_line_follow_the_umask(tmp_path, mask):
    out = tmp_path / "maps"
    fig = tmp_path / "figs" / "pixel"
    script = (f"umask {mask} && {sys.executable} -m pimc_core.cli classify {COMPAT / 'stack' / 'manifest.yaml'} "
              f"--model {COMPAT / 'model.pimc'} --out {out} --quiet && {sys.executable} -m pimc_core.cli rp "
              f"{COMPAT / 'stack' / 'manifest.yaml'} --x 600055 --y 4899945 --out {fig}")
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    m = int(mask, 8)
    files = sorted(out.iterdir()) + sorted(fig.parent.iterdir())
    assert {p.suffix for p in files} >= {".tif", ".qml", ".png", ".npy"}
    for p in files:
        assert mode(p) == 0o666 & ~m, (p, oct(mode(p)))
    assert mode(out) == mode(fig.parent) == 0o777 & ~m
