"""pimc_core.io.atomic: outputs appear whole or not at all; what a killed run left is cleaned."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from pimc_core.errors import InputError
from pimc_core.io.atomic import (
    Staging,
    atomic_path,
    is_part,
    os_error_message,
    output_file,
    output_folder,
    part_path,
    remove_stale_parts,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_atomic_path_renames_on_success_and_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "a.txt"
    with atomic_path(target) as tmp:
        assert is_part(tmp) and tmp.parent == tmp_path and tmp.name.startswith(".a.txt")
        tmp.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["a.txt"]


def test_disk_full_is_one_line_naming_the_file(tmp_path):
    target = tmp_path / "m.tif"
    with pytest.raises(InputError, match=r"m\.tif: cannot write \(no space left on device\)$"):
        with atomic_path(target) as tmp:
            tmp.write_text("x")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path) == []
    assert os_error_message(RuntimeError("TIFFAppendToStrip: Write error; Free disk space available is 0"), "x.tif") \
        == "x.tif: cannot write (no space left on device)"


def test_staging_commits_all_or_nothing(tmp_path):
    (tmp_path / "classes.tif").write_text("old")
    with pytest.raises(RuntimeError):
        with Staging(tmp_path) as stage:
            stage.path("classes.tif").write_text("new")
            stage.path("confidence.tif").write_text("new")
            stage.temp("classes.tif", ".scratch").write_text("scratch")
            raise RuntimeError("fails before commit")
    assert sorted(os.listdir(tmp_path)) == ["classes.tif"] and (tmp_path / "classes.tif").read_text() == "old"
    with Staging(tmp_path) as stage:
        stage.path("classes.tif").write_text("new")
        stage.path("confidence.tif").write_text("new")
        stage.temp("classes.tif", ".scratch").write_text("scratch")
        files = stage.commit()
    assert [f.name for f in files] == ["classes.tif", "confidence.tif"]
    assert sorted(os.listdir(tmp_path)) == ["classes.tif", "confidence.tif"]


def test_parts_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    dead = tmp_path / f".classes.tif.pimc-part-{_dead_pid()}-0a1b2c3d.tif"
    live = part_path(tmp_path / "classes.tif")  # this process: alive
    other = tmp_path / ".hidden.txt"
    for p in (dead, live, other):
        p.write_text("x")
    assert remove_stale_parts(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
    # the next writer into the folder cleans up by itself
    dead.write_text("x")
    with atomic_path(tmp_path / "b.txt") as tmp:
        tmp.write_text("b")
    assert not dead.exists()


def test_output_checks_fail_before_any_work(tmp_path):
    assert output_folder(tmp_path / "new" / "deeper").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file, not an output folder"):
        output_folder(tmp_path / "file")
    with pytest.raises(InputError, match="is a folder; give a file name"):
        output_file(tmp_path)
    with pytest.raises(InputError, match="output folder does not exist"):
        output_file(tmp_path / "missing" / "x.tif")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(InputError, match="not writable"):
            output_folder(ro)
