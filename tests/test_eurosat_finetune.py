"""Patch classification end to end: ``python -m training finetune`` with a ``task: patch`` config on
small EuroSAT-layout folders written here (both variants), its report and model file, a start
from a PIMC model's patch encoder, and the one-line refusals of bad folders and bands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from PIL import Image

from pimc_core.datasets import EuroSATDataset
from pimc_core.learn.patch_classifier import load_patch_classifier, predict_patches
from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.models.pimc_net import PimcNet
from pimc_core.models.pixel_model import save_pixel_model
from training.raster import main

CLASSES = ("AnnualCrop", "Forest", "SeaLake")
N = 20
# reflectance of the 13 bands (B01 … B12, B8A) per class: crop (bright NIR), forest (darker,
# NIR high), water (low everywhere, NIR lowest)
SPECTRA = {
    "AnnualCrop": [0.12, 0.09, 0.10, 0.08, 0.15, 0.30, 0.35, 0.38, 0.12, 0.01, 0.25, 0.15, 0.36],
    "Forest": [0.10, 0.06, 0.07, 0.04, 0.09, 0.22, 0.27, 0.29, 0.10, 0.01, 0.14, 0.07, 0.28],
    "SeaLake": [0.11, 0.08, 0.07, 0.05, 0.04, 0.03, 0.03, 0.02, 0.01, 0.00, 0.01, 0.01, 0.02],
}


def _texture(cls: str, rng: np.random.Generator) -> np.ndarray:
    """(64, 64) multiplicative texture: crop stripes, forest blobs, smooth water."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    if cls == "AnnualCrop":
        a = rng.uniform(0, np.pi)
        return 1 + 0.25 * np.sign(np.sin((np.cos(a) * xx + np.sin(a) * yy) / rng.uniform(2, 4)))
    if cls == "Forest":
        return 1 + 0.3 * rng.standard_normal((8, 8)).repeat(8, 0).repeat(8, 1)
    return 1 + 0.03 * rng.standard_normal((64, 64))


def _patches(seed: int = 0):
    rng = np.random.default_rng(seed)
    for cls in CLASSES:
        for k in range(1, N + 1):
            spec = np.asarray(SPECTRA[cls], np.float32) * rng.uniform(0.8, 1.2)  # brightness varies
            img = spec[:, None, None] * _texture(cls, rng)[None] + rng.normal(0, 0.01, (13, 64, 64))
            yield cls, k, np.clip(img, 0, 1)


def write_ms_folder(root):
    for cls, k, img in _patches():
        (root / cls).mkdir(parents=True, exist_ok=True)
        with rasterio.open(root / cls / f"{cls}_{k}.tif", "w", driver="GTiff", width=64, height=64, count=13,
                           dtype="uint16", crs="EPSG:32633",
                           transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)) as dst:
            dst.write((img * 10000).astype(np.uint16))
    return root


def write_rgb_folder(root):
    for cls, k, img in _patches(1):
        (root / cls).mkdir(parents=True, exist_ok=True)
        rgb = np.clip(img[[3, 2, 1]].transpose(1, 2, 0) * 3.5 * 255, 0, 255).astype(np.uint8)
        Image.fromarray(rgb, "RGB").save(root / cls / f"{cls}_{k}.jpg", quality=95)
    return root


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
