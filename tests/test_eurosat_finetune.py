"""Patch classification end to end: ``python -m training finetune`` with a ``task: patch`` config on
small EuroSAT-layout folders written here (both variants), its report and model file, a start
from a PIMC model's patch encoder, and the one-line refusals of bad folders and bands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from pimc_core.datasets import EuroSATDataset
from pimc_core.learn.patch_classifier import load_patch_classifier, predict_patches
from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.models.pimc_net import PimcNet
from pimc_core.models.pixel_model import save_pixel_model
from training.eurosat_sample import main as sample_main
from training.eurosat_sample import write_eurosat_folder
from training.raster import main

CLASSES = ("AnnualCrop", "Forest", "SeaLake")
N = 20


def write_ms_folder(root):
    return write_eurosat_folder(root, "ms", N, seed=0, classes=CLASSES)


def write_rgb_folder(root):
    return write_eurosat_folder(root, "rgb", N, seed=1, classes=CLASSES)


def run(tmp_path, dataset, name="run", **extra):
    cfg = {"task": "patch", "name": name, "out_dir": str(tmp_path / "{name}"), "device": "cpu", "seed": 0,
           "dataset": dataset, "finetune": {"epochs": 8, "batch_size": 16}, **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return main(["finetune", "--config", str(path)]), tmp_path / name


@pytest.fixture(scope="module")
def ms_root(tmp_path_factory):
    return write_ms_folder(tmp_path_factory.mktemp("eurosat") / "EuroSATallBands")


@pytest.fixture(scope="module")
def rgb_root(tmp_path_factory):
    return write_rgb_folder(tmp_path_factory.mktemp("eurosat") / "2750")


def _check_report(out, capsys, variant, bands):
    report = json.loads((out / "patch_finetune.json").read_text())
    assert report["task"] == "patch" and report["dataset"]["variant"] == variant
    assert report["dataset"]["bands"] == bands
    assert (report["dataset"]["train"], report["dataset"]["test"]) == (48, 12)  # 16 + 4 per class
    t = report["test"]
    conf = np.asarray(t["confusion"])
    assert conf.shape == (3, 3) and conf.sum() == 12 and t["classes"] == list(CLASSES)
    assert t["accuracy"] == pytest.approx(np.trace(conf) / 12, abs=1e-4)
    assert t["accuracy"] >= 0.75 and t["macro_f1"] >= 0.7  # chance: 1/3
    assert set(t["f1"]) == set(CLASSES)
    assert "test accuracy" in capsys.readouterr().out
    # the model file reads back and gives the reported accuracy on the same test images
    model, meta = load_patch_classifier(report["model"])
    assert meta["task"] == "patch_classification" and meta["bands"] == bands
    assert [c["name"] for c in meta["classes"]] == list(CLASSES)
    ds = EuroSATDataset(report["dataset"]["path"], bands=bands)
    _, te = ds.split(0.8, seed=0)
    x, y = ds.load_all(indices=te)
    acc = float((predict_patches(model, x, device="cpu").argmax(1) == y).mean())
    assert acc == pytest.approx(t["accuracy"], abs=1e-4)
    return report


def test_ms_folder_from_scratch(tmp_path, ms_root, capsys):
    rc, out = run(tmp_path, {"path": str(ms_root), "variant": "ms"})
    assert rc == 0
    _check_report(out, capsys, "ms", ["blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
                                      "swir1", "swir2"])
    assert not list(out.glob("*.tmp*"))


def test_rgb_folder_from_a_pimc_model(tmp_path, rgb_root, capsys):
    cfg = PimcModelConfig(indices=("ndvi",), n_dates=6, patch_bands=("red", "green", "blue"), patch_size=5)
    init = save_pixel_model(tmp_path / "pretrained.pimc", PimcNet(cfg))
    rc, out = run(tmp_path, {"path": str(rgb_root)}, init=str(init))
    assert rc == 0
    report = _check_report(out, capsys, "rgb", ["red", "green", "blue"])
    assert report["init"] == str(init)
    # the encoder started from the PIMC model's: same architecture in the written file
    model, _ = load_patch_classifier(report["model"])
    assert model.encoder_cfg.width == cfg.patch_cfg().width and model.encoder_cfg.in_channels == 3


def test_rgb_init_bands_missing(tmp_path, rgb_root, capsys):
    cfg = PimcModelConfig(indices=("ndvi",), n_dates=6, patch_bands=("red", "nir"), patch_size=5)
    init = save_pixel_model(tmp_path / "nir.pimc", PimcNet(cfg))
    rc, _ = run(tmp_path, {"path": str(rgb_root)}, init=str(init))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "'nir'" in err


def _one_line_error(tmp_path, capsys, dataset, *needles):
    rc, out = run(tmp_path, dataset, name="bad")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err
    assert not out.exists()  # nothing left behind


def test_folder_without_class_folders(tmp_path, ms_root, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "notes.txt").write_text("x")
    _one_line_error(tmp_path, capsys, {"path": str(flat)}, str(flat))


def test_unknown_band(tmp_path, ms_root, capsys):
    _one_line_error(tmp_path, capsys, {"path": str(ms_root), "bands": ["red", "thermal"]}, "'thermal'")


def test_band_without_canonical_name(tmp_path, ms_root, capsys):
    _one_line_error(tmp_path, capsys, {"path": str(ms_root), "bands": ["red", "B10"]}, "B10")


def test_empty_class(tmp_path, capsys):
    root = tmp_path / "few"
    for cls in ("Forest", "SeaLake"):
        (root / cls).mkdir(parents=True)
    for k in range(3):
        Image.fromarray(np.full((64, 64, 3), 40 * k, np.uint8), "RGB").save(root / "Forest" / f"Forest_{k}.jpg")
    _one_line_error(tmp_path, capsys, {"path": str(root)}, "SeaLake", "0 image")


def test_patch_task_is_for_finetune_only(tmp_path, ms_root, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"task": "patch", "dataset": {"path": str(ms_root)}}))
    assert main(["pretrain", "--config", str(path)]) == 2
    assert "finetune" in capsys.readouterr().err


def test_shipped_config_loads():
    from pathlib import Path

    from training.patch import PatchRunConfig, is_patch_config, load_patch_config

    path = Path(__file__).parents[1] / "training" / "configs" / "eurosat.yaml"
    assert is_patch_config(str(path))
    cfg = load_patch_config(str(path), ["finetune.epochs=3", "dataset.variant=rgb"])
    assert isinstance(cfg, PatchRunConfig) and cfg.finetune.epochs == 3 and cfg.dataset.variant == "rgb"
    assert cfg.finetune.augment.patch_flip and cfg.encoder["embed_dim"] == 64


def test_sample_folder_command(tmp_path, capsys):
    assert sample_main([str(tmp_path / "s"), "--variant", "rgb", "--per-class", "3", "--jitter", "0.2"]) == 0
    ds = EuroSATDataset(tmp_path / "s")
    assert ds.variant == "rgb" and len(ds) == 15 and len(ds.classes) == 5
    x, _ = ds.load_all()
    assert x.shape == (15, 3, 64, 64) and x.std() > 0.01
    assert sample_main([str(tmp_path / "t"), "--per-class", "1"]) == 2
    assert "--per-class" in capsys.readouterr().err


def test_compare_section_written_and_kept(tmp_path):
    from training.eurosat_compare import BEGIN, END, compare, render_section
    from training.eurosat_compare import main as compare_main
    from training.output import keep_marked_sections

    cfg = PimcModelConfig(indices=("ndvi",), n_dates=6, patch_bands=("red", "nir"), patch_size=5,
                          patch_encoder={"width": 4, "embed_dim": 64})
    init = save_pixel_model(tmp_path / "pre.pimc", PimcNet(cfg))
    rows = compare(init, tmp_path / "w", seeds=[0], fractions=[0.5], epochs=1,
                   folder={"per_class": 4, "jitter": 0.1, "seed": 0})
    assert rows[0]["train"] == 10 and rows[0]["test"] == 10  # 5 classes x 2
    assert 0 <= rows[0]["scratch"]["accuracy"] <= 1 and 0 <= rows[0]["pretrained"]["accuracy"] <= 1
    sec = render_section(rows, init, "cmd")
    assert sec.startswith(BEGIN) and sec.rstrip().endswith(END) and "| 0.5 | 10 / 10 | 1 |" in sec
    out = tmp_path / "RESULTS.md"
    out.write_text("# report\n\nold text\n\n" + sec)
    assert keep_marked_sections(out, "# new report\n").endswith(sec)  # a rewritten report keeps the section
    assert keep_marked_sections(tmp_path / "none.md", "# new\n") == "# new\n"
    assert compare_main(["--init", str(init), "--seeds", "x", "--out", str(out)]) == 2


def test_a_rewritten_report_keeps_every_marked_section(tmp_path):
    """``python -m training report`` rewrites docs/RESULTS.md and keeps the sections other commands
    wrote (patch classification, text queries, …): replaced in place when the new text has one,
    appended in their old order otherwise; unmarked text of the old file is not kept."""
    from training.output import keep_marked_sections

    a = "<!-- patch-classification: python -m training.eurosat_compare -->\nA old\n<!-- /patch-classification -->"
    b = "<!-- text-queries: python -m benchmarks.bench_text_query -->\nB\n<!-- /text-queries -->"
    old = tmp_path / "RESULTS.md"
    old.write_text(f"# old\nstale text\n\n{a}\n\n{b}\n", encoding="utf-8")
    new = "# new\n\n<!-- text-queries: x -->\nempty\n<!-- /text-queries -->\n\nend\n"
    out = keep_marked_sections(old, new)
    assert "stale text" not in out and out.startswith("# new")
    assert b in out and "empty" not in out and out.index(b) < out.index("end")  # replaced in place
    assert out.rstrip().endswith(a)  # appended
    assert keep_marked_sections(tmp_path / "none.md", new) == new
