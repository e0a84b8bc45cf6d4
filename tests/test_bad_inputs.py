"""Bad input to the data commands ends in ONE line naming the file, flag or value, with no
traceback, no hang and nothing left in the output folder: coordinates in the wrong CRS, output
paths that cannot be written, FIFOs and symbolic link loops among the inputs, an empty class
table, a disk that fills up while the sample data is written."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pimc_core.cli import main
from pimc_core.errors import ConfigError, InputError
from pimc_core.io.classes import load_class_table
from pimc_core.io.grid import Grid
from pimc_core.io.timeseries import open_series

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("pimc: error:"), err
    return lines[0]


def pimc(*argv, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m pimc_core.cli ARGV`` in a subprocess (a hang fails the test instead of blocking it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pimc_core.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones too) → sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ============================================================================ pimc rp: coordinates
def test_rp_metres_given_as_lonlat_names_values_and_crs(capsys, tiny_sample, tmp_path):
    manifest = tiny_sample.manifest
    code, out, err = run(capsys, "rp", manifest, "--x", 600050, "--y", 4899950, "--crs", "EPSG:4326",
                         "--out", tmp_path / "p")
    assert code == 2
    line = one_error_line(err)
    assert "(600050, 4899950)" in line and "e+06" not in line and "EPSG:4326" in line, line
    assert "not a valid position" in line and "longitude" in line, line
    assert list(tmp_path.iterdir()) == []


def test_rp_point_outside_the_raster_names_given_and_raster_coordinates(capsys, tiny_sample, tmp_path):
    code, out, err = run(capsys, "rp", tiny_sample.manifest, "--x", 1.5, "--y", 44.2, "--crs", "EPSG:4326",
                         "--out", tmp_path / "p")
    assert code == 2
    line = one_error_line(err)
    assert "(1.5, 44.2) in EPSG:4326" in line and "EPSG:32631" in line and "outside the raster" in line, line
    code, out, err = run(capsys, "rp", tiny_sample.manifest, "--x", 0, "--y", 0, "--out", tmp_path / "q")
    assert code == 2 and "point (0, 0) is outside the raster" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", ["--x", "--y"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_rp_refuses_non_finite_coordinates(capsys, tiny_sample, tmp_path, flag, value):
    xy = {"--x": "600050", "--y": "4899950", flag: value}
    with pytest.raises(SystemExit) as e:  # --x=-inf: "-inf" alone would read as an option
        main(["rp", str(tiny_sample.manifest), f"--x={xy['--x']}", f"--y={xy['--y']}", "--out", str(tmp_path / "p")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag} must be a finite number (got '{value}')" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_rowcol_in_the_library():
    from affine import Affine
    from rasterio.crs import CRS

    g = Grid(CRS.from_epsg(32631), Affine(10, 0, 600000, 0, -10, 4900000), 24, 24)
    assert g.rowcol(600055, 4899945) == (5, 5)
    with pytest.raises(InputError, match="finite"):
        g.rowcol(float("nan"), 4899945)
    with pytest.raises(InputError, match=r"point \(200, 40\) is not a valid position in EPSG:4326"):
        g.rowcol(200, 40, "EPSG:4326")
    lonlat = Grid(CRS.from_epsg(4326), Affine(0.01, 0, 1, 0, -0.01, 44), 24, 24)
    assert lonlat.rowcol(1.005, 43.995) == (0, 0)
    with pytest.raises(InputError, match=r"\(1000000000000, 1000000000000\) is not a valid position in EPSG:32631: it cannot be placed"):
        lonlat.rowcol(1e12, 1e12, "EPSG:32631")
    with pytest.raises(ConfigError, match="unknown CRS"):
        g.rowcol(1, 1, "EPSG:0")


# ============================================================================ pimc indices / rp: outputs
def test_indices_out_is_checked_before_any_work(capsys, tiny_sample, tmp_path, monkeypatch):
    import pimc_core.io.timeseries as timeseries

    def never(*a, **k):
        raise AssertionError("the series was opened although --out cannot be written")

    monkeypatch.setattr(timeseries, "open_series", never)
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    cases = [
        (tmp_path / "a_folder", "a_folder: is a folder; give a file name"),
        (tmp_path / "missing" / "i.tif", "missing: output folder does not exist"),
        (tmp_path / "a_file" / "i.tif", "a_file: is a file, not an output folder"),
    ]
    for out, message in cases:
        code, _, err = run(capsys, "indices", tiny_sample.manifest, "--out", out, "--quiet")
        assert code == 2 and message in one_error_line(err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder"]
    assert list((tmp_path / "a_folder").iterdir()) == []


def test_indices_into_an_unwritable_folder(capsys, tiny_sample, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run(capsys, "indices", tiny_sample.manifest, "--out", locked / "i.tif", "--quiet")
        if os.geteuid() != 0:
            assert code == 2 and "locked: output folder is not writable" in one_error_line(err)
            assert list(locked.iterdir()) == []
        else:  # root writes anyway: the stack is there, whole, and nothing else
            assert code == 0, err
            assert [p.name for p in locked.iterdir()] == ["i.tif"]
    finally:
        locked.chmod(0o700)


def test_indices_failing_mid_way_leaves_nothing(capsys, tiny_sample, tmp_path, monkeypatch):
    import pimc_core.series.index_stack as index_stack

    real, calls = index_stack.compute_indices, []

    def fails_second_block(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(index_stack, "compute_indices", fails_second_block)
    code, _, err = run(capsys, "indices", tiny_sample.manifest, "--out", tmp_path / "i.tif", "--block", 8, "--quiet")
    assert code == 2 and "i.tif: cannot write (no space left on device)" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_rp_outputs_appear_together_or_not_at_all(capsys, tiny_sample, tmp_path, monkeypatch):
    import pimc_core.viz.pixel_report as pixel_report

    def disk_full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pixel_report.np, "save", disk_full)  # the .npy, written after the .png
    out = tmp_path / "new" / "p"
    code, _, err = run(capsys, "rp", tiny_sample.manifest, "--x", 600055, "--y", 4899945, "--out", out)
    assert code == 2 and "p.npy: cannot write (no space left on device)" in one_error_line(err)
    assert not list(tmp_path.rglob("p.*")) and not list(tmp_path.rglob(".p.*"))
    monkeypatch.undo()
    (tmp_path / "a_file").write_text("x")
    code, _, err = run(capsys, "rp", tiny_sample.manifest, "--x", 600055, "--y", 4899945,
                       "--out", tmp_path / "a_file" / "sub" / "p")
    assert code == 2 and "a_file: is a file, not an output folder" in one_error_line(err)
    code, _, err = run(capsys, "rp", tiny_sample.manifest, "--x", 600055, "--y", 4899945, "--out", out)
    assert code == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == ["p.npy", "p.png"]


# ============================================================================ FIFOs and link loops
@pytest.fixture
def stack(tmp_path, tiny_sample):
    """A copy of three dates of the tiny sample, with its manifest."""
    folder = tmp_path / "stack"
    folder.mkdir()
    for p in tiny_sample.images[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    lines = tiny_sample.manifest.read_text().splitlines()
    head = [line for line in lines if not line.startswith("  - ")]
    items = [line for line in lines if line.startswith("  - ")][:3]
    (folder / "manifest.yaml").write_text("\n".join(head + items) + "\n")
    return folder


def _with_item(folder: Path, name: str) -> Path:
    """The manifest of ``folder`` with one more item, ``name`` dated 2023-12-31."""
    m = folder / "manifest.yaml"
    m.write_text(m.read_text() + f"  - {{date: 2023-12-31, path: {name}}}\n")
    return m


@pytest.mark.parametrize("kind", ["fifo", "loop"])
def test_manifest_item_that_is_a_fifo_or_a_link_loop(stack, kind):
    odd = stack / "S2_20231231.tif"
    os.mkfifo(odd) if kind == "fifo" else odd.symlink_to(odd.name)
    proc = pimc("info", _with_item(stack, odd.name))
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    what = "a FIFO (named pipe)" if kind == "fifo" else "a symbolic link loop"
    assert f"items[3]: file {odd}: is {what}, not a raster file" in line, line


@pytest.mark.parametrize("kind", ["fifo", "loop", "broken"])
def test_folder_entry_that_is_a_fifo_or_a_link_loop(stack, kind):
    (stack / "manifest.yaml").unlink()
    odd = stack / "S2_20231231.tif"
    if kind == "fifo":
        os.mkfifo(odd)
    else:
        odd.symlink_to(odd.name if kind == "loop" else "nowhere.tif")
    proc = pimc("info", stack, "--bands", "blue=1,green=2,red=3,nir=4")
    assert proc.returncode == 2, proc.stderr
    what = {"fifo": "a FIFO (named pipe)", "loop": "a symbolic link loop", "broken": "a broken symbolic link"}[kind]
    assert proc.stderr.strip() == f"pimc: error: {odd}: is {what}, not a raster file or date folder"


def test_fifo_in_a_date_folder_and_fifo_sources(tmp_path):
    day = tmp_path / "series" / "2023-05-01"
    day.mkdir(parents=True)
    os.mkfifo(day / "scene_B04.tif")
    proc = pimc("info", tmp_path / "series")
    assert proc.returncode == 2 and "scene_B04.tif: is a FIFO (named pipe)" in proc.stderr, proc.stderr
    os.mkfifo(tmp_path / "manifest.yaml")
    proc = pimc("info", tmp_path / "manifest.yaml")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().endswith("manifest.yaml: is a FIFO (named pipe), not a manifest or a folder")


def test_class_table_that_is_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "classes.json")
    with pytest.raises(InputError, match="classes.json: is a FIFO"):
        load_class_table(tmp_path / "classes.json")


def test_manifest_loop_via_the_library(stack):
    (stack / "loop.tif").symlink_to("loop.tif")
    with pytest.raises(InputError, match="is a symbolic link loop"):
        open_series(_with_item(stack, "loop.tif"))


# ============================================================================ classes.json
@pytest.mark.parametrize("content", [[], {"classes": []}])
def test_empty_class_table_is_refused(tmp_path, content):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match="classes.json: no classes"):
        load_class_table(path)


def test_empty_class_table_on_the_command_line(capsys, tiny_sample, tmp_path):
    path = tmp_path / "classes.json"
    path.write_text("[]")
    code, _, err = run(capsys, "fit", tiny_sample.manifest, "--labels", tiny_sample.labels_sparse,
                       "--classes", path, "--out", tmp_path / "m.pimc", "--quiet")
    assert code == 2 and "classes.json: no classes" in one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.json"]


# ============================================================================ pimc sample-data
@pytest.mark.parametrize("previous", [False, True])
@pytest.mark.parametrize("fail_at", [2, 7, 9])  # labels_sparse.tif, an image, the last image
def test_sample_data_disk_full_leaves_the_folder_as_it_was(capsys, tmp_path, monkeypatch, previous, fail_at):
    import pimc_core.datasets.synthetic as synthetic

    out = tmp_path / "sample"
    if previous:
        assert run(capsys, "sample-data", out, "--size", 16, "--dates", 3, "--seed", 1)[0] == 0
    before = snapshot(out) if previous else None
    real, calls = synthetic._write_tif, []

    def fills_up(path, *a, **k):
        calls.append(path)
        if len(calls) == fail_at:
            Path(path).write_bytes(b"\0" * 10)  # part of it was written
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(synthetic, "_write_tif", fills_up)
    code, _, err = run(capsys, "sample-data", out, "--size", 16, "--dates", 6)
    assert code == 2
    line = one_error_line(err)
    final = Path(calls[-1]).name.split(".pimc-part-")[0][1:]  # the temporary name holds the final one
    assert final == "labels_sparse.tif" if fail_at == 2 else final.startswith("S2_2023")
    assert f"{out / final}: cannot write (no space left on device)" in line, line
    assert "manifest.yaml" not in line
    if previous:
        assert snapshot(out) == before
    else:
        assert not out.exists()  # the folder it created is removed with its parts


def test_sample_data_sigterm_mid_write_leaves_the_folder_empty(tmp_path):
    out = tmp_path / "sample"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pimc_core.cli", "sample-data", str(out), "--size", "512",
                             "--dates", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 180  # a loaded machine is slow to start
        while not any(out.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the sample was written before it could be interrupted"
        assert all(".pimc-part-" in p.name for p in out.iterdir())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().startswith("pimc: terminated;") and "Traceback" not in err
    assert list(out.iterdir()) == []


def test_sample_data_writes_the_same_bytes_through_staging(tmp_path):
    from pimc_core.datasets.synthetic import make_synthetic

    a = make_synthetic(tmp_path / "a", size=16, n_dates=4, seed=5)
    b = make_synthetic(tmp_path / "b", size=16, n_dates=4, seed=5)
    assert snapshot(a.outdir) == snapshot(b.outdir)
    assert not [p for p in a.outdir.iterdir() if p.name.startswith(".")]


def test_bbox_in_a_crs_it_does_not_fit():
    from affine import Affine
    from rasterio.crs import CRS

    from pimc_core.io.grid import window_of_bounds

    lonlat = Grid(CRS.from_epsg(4326), Affine(0.01, 0, 1, 0, -0.01, 44), 24, 24)
    assert window_of_bounds(lonlat, (1.0, 43.9, 1.05, 44.0)) is not None
    with pytest.raises(InputError, match=r"bbox \(1000000000000.0, .*\) is not a valid box in EPSG:32631"):
        window_of_bounds(lonlat, (1e12, 1e12, 2e12, 2e12), "EPSG:32631")


def test_quality_rule_is_a_checked_config():
    from pimc_core.io.sensors import QualityRule

    assert QualityRule(valid=(4, 5)).to_dict() == {"valid": [4, 5]}
    assert QualityRule(bits=[0, 63]).bits == [0, 63] and QualityRule(invalid=np.array([3])).invalid is not None
    for kw, message in [({}, "exactly one"), (dict(valid=(1,), bits=(2,)), "exactly one"),
                        (dict(bits=(64,)), "0..63"), (dict(valid=5), "mask.valid must be None or an array-like")]:
        with pytest.raises(ConfigError, match=message):
            QualityRule(**kw)
