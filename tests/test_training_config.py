"""Typed training configs (unknown keys, overrides, extends, the shipped files) and the raster
training commands end to end on a tiny stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from pimc_core.errors import ConfigError, InputError
from training.config import TrainConfig, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"sources": [{"path": "stack", "labels": "labels.tif"}]}


@pytest.mark.parametrize("bad, name", [
    ({**BASE, "pretrian": {}}, "'pretrian'"),
    ({**BASE, "pretrain": {"stepz": 3}}, "'stepz'"),
    ({**BASE, "pretrain": {"augment": {"flip": True}}}, "'flip'"),
    ({"sources": [{"path": "x", "label": "y"}]}, "'label'"),
    ({**BASE, "evaluate": {"fractions": [0.1]}}, "'fractions'"),
    ({**BASE, "data": {"indexes": ["ndvi"]}}, "'indexes'"),
])
def test_unknown_keys_are_named(tmp_path, bad, name):
    with pytest.raises(ConfigError, match=name) as e:
        load_config(write(tmp_path / "c.yaml", bad))
    assert "known:" in str(e.value)


def test_values_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="pretrain.steps"):
        load_config(write(tmp_path / "c.yaml", {**BASE, "pretrain": {"steps": "many"}}))
    with pytest.raises(ConfigError, match="sources"):
        load_config(write(tmp_path / "c.yaml", {"name": "x"}))
    with pytest.raises(ConfigError, match="label_fractions"):
        load_config(write(tmp_path / "c.yaml", {**BASE, "evaluate": {"label_fractions": [0, 0.5]}}))
    with pytest.raises(ConfigError, match="classifier_inputs"):
        load_config(write(tmp_path / "c.yaml", {**BASE, "classifier_inputs": "patch"}))
    with pytest.raises(ConfigError, match="unknown index"):
        load_config(write(tmp_path / "c.yaml", {**BASE, "data": {"indices": ["ndwi9"]}}))
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_overrides_convert_types(tmp_path):
    path = write(tmp_path / "c.yaml", BASE)
    cfg = load_config(path, ["pretrain.steps=12", "pretrain.lr=1e-3", "finetune.freeze=true", "data.indices=ndvi,evi",
                             "model.rp_encoder.width=8", "evaluate.label_fractions=[0.1, 0.5]", "name=abc",
                             "pretrain.augment.patch_flip=no", "seed=7"])
    assert cfg.pretrain.steps == 12 and isinstance(cfg.pretrain.steps, int)
    assert cfg.pretrain.lr == 1e-3 and isinstance(cfg.pretrain.lr, float)
    assert cfg.finetune.freeze is True and cfg.pretrain.augment.patch_flip is False
    assert cfg.data.indices == ("ndvi", "evi") and cfg.evaluate.label_fractions == (0.1, 0.5)
    assert cfg.model == {"rp_encoder": {"width": 8}} and cfg.seed == 7
    assert cfg.output == Path("runs/abc")
    for bad, name in (["pretrain.stepz=3"], "'stepz'"), (["bogus=1"], "'bogus'"), (["pretrain.augment.x=1"], "'x'"):
        with pytest.raises(ConfigError, match=name):
            load_config(path, bad)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(path, ["pretrain.steps"])
    with pytest.raises(ConfigError, match="integer"):
        load_config(path, ["pretrain.steps=1.5"])


def test_extends_merges_sections(tmp_path):
    write(tmp_path / "base.yaml", {**BASE, "pretrain": {"steps": 50, "lr": 0.01}, "model": {"level": "none"}})
    child = write(tmp_path / "child.yaml", {"extends": "base.yaml", "pretrain": {"steps": 7}})
    cfg = load_config(child)
    assert cfg.pretrain.steps == 7 and cfg.pretrain.lr == 0.01 and cfg.model == {"level": "none"}


RUNNABLE = sorted(p for p in CONFIGS.glob("*.yaml")
                  if p.name not in ("report.yaml", "eurosat.yaml") and not p.name.startswith("fit_"))  # eurosat: patch task


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig) and cfg.sources
    from pimc_core.models.pimc_net import PimcModelConfig

    PimcModelConfig.from_dict({**cfg.model, "n_dates": 30})  # the model section is valid too


def test_raster_commands_end_to_end(tmp_path, capsys):
    from training import raster

    torch.set_num_threads(1)
    cfg = write(tmp_path / "tiny.yaml", {
        "name": "tiny", "out_dir": str(tmp_path / "run"),
        "sources": [{"path": str(tmp_path / "data"), "synthetic": {"size": 24, "n_dates": 12, "seed": 2, "n_classes": 3},
                     "labels": "labels_sparse.tif", "test_labels": "labels.tif"}],
        "data": {"patch_size": 5, "pretrain_samples": 300, "per_class": 20},
        "model": {"rp_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
                  "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8, "rp": {"size": 8}},
        "pretrain": {"steps": 4, "batch_size": 64, "checkpoint_every": 2, "warmup_steps": 1},
        "finetune": {"epochs": 1, "max_steps": 3, "batch_size": 32},
        "forecast": {"finetune": {"epochs": 1, "batch_size": 64}},
        "evaluate": {"label_fractions": [0.5, 1.0], "test_samples": 100, "rf_trees": 5},
        "threads": 1,
    })
    assert raster.main(["pretrain", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pretrain: 4 steps") and (tmp_path / "run" / "pretrained.pimc").exists()
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints" / "pretrain").glob("*.pt")) == [
        "step_00000002.pt", "step_00000004.pt"]
    # a rerun resumes from the last checkpoint: nothing left to do
    assert raster.main(["pretrain", "--config", str(cfg)]) == 0
    assert json.loads((tmp_path / "run" / "pretrain.json").read_text())["resumed_from"] == 4
    capsys.readouterr()
    assert raster.main(["finetune", "--config", str(cfg)]) == 0
    assert "test accuracy" in capsys.readouterr().out and (tmp_path / "run" / "classifier.pimc").exists()
    from pimc_core.learn.input_selection import INPUT_SETS
    from pimc_core.models.pixel_model import load_pixel_model

    ft = json.loads((tmp_path / "run" / "finetune.json").read_text())
    assert ft["inputs"]["inputs"] in INPUT_SETS and ft["inputs"]["reason"]  # auto: chosen on held-out parcels
    assert load_pixel_model(tmp_path / "run" / "classifier.pimc").classify_modalities == INPUT_SETS[ft["inputs"]["inputs"]]
    # configured inputs are stored in the model file, and the model scores as finetune reported
    assert raster.main(["finetune", "--config", str(cfg), "classifier_inputs=temporal"]) == 0
    ft = json.loads((tmp_path / "run" / "finetune.json").read_text())
    assert ft["inputs"]["inputs"] == "temporal" and not ft["inputs"]["scores"]
    assert load_pixel_model(tmp_path / "run" / "classifier.pimc").classify_modalities == ("rp", "series")
    assert raster.main(["evaluate", "--config", str(cfg), f"evaluate.model={tmp_path / 'run' / 'classifier.pimc'}"]) == 0
    rep = json.loads((tmp_path / "run" / "evaluate.json").read_text())
    assert [r["fraction"] for r in rep["rows"]] == [0.5, 1.0]
    assert {"scratch", "pretrained", "linear_probe", "random_forest"} <= set(rep["rows"][0])
    assert 0 <= rep["model"]["accuracy"] <= 1
    assert rep["model"]["accuracy"] == pytest.approx(ft["test"]["accuracy"], abs=0.011)  # same test pixels, same inputs
    capsys.readouterr()
    assert raster.main(["forecast", "--config", str(cfg)]) == 0
    fc = json.loads((tmp_path / "run" / "forecast.json").read_text())
    assert (fc["input_len"], fc["horizon"]) == (9, 3)
    assert set(fc["scores"]) == {"pimc", "persistence", "seasonal_naive", "linear_trend"}
    assert raster.main(["finetune", "--config", str(cfg), "pretrain.bogus=1"]) == 2
    assert "'bogus'" in capsys.readouterr().err


def test_finetune_with_a_radar_source(tmp_path, capsys):
    """``sources[].sar``: the radar series join the indices, the network has its radar modality,
    and the model file classifies from either source alone."""
    from pimc_core.models.pixel_model import load_pixel_model
    from training import raster

    torch.set_num_threads(1)
    cfg = write(tmp_path / "sar.yaml", {
        "name": "sar", "out_dir": str(tmp_path / "run"),
        "sources": [{"path": str(tmp_path / "data"), "sar": "s1/manifest.yaml", "labels": "labels_sparse.tif",
                     "test_labels": "labels.tif",
                     "synthetic": {"size": 24, "n_dates": 10, "seed": 3, "n_classes": 3, "sar": True}}],
        "data": {"patch_size": 5, "pretrain_samples": 200, "per_class": 20},
        "model": {"rp_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
                  "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8, "rp": {"size": 8}},
        "pretrain": {"steps": 2, "batch_size": 64, "warmup_steps": 1},
        "finetune": {"epochs": 1, "max_steps": 3, "batch_size": 32},
        "threads": 1,
    })
    assert raster.main(["pretrain", "--config", str(cfg)]) == 0
    assert raster.main(["finetune", "--config", str(cfg)]) == 0
    assert "indices: ndvi, evi, savi, vv_db, vh_db, rvi" in capsys.readouterr().err
    model = load_pixel_model(tmp_path / "run" / "classifier.pimc")
    assert model.net.modalities == ("rp", "series", "patch", "sar") and model.metadata["dates"]["mode"] == "grid"
    # fine-tuning starts from the pretrained radar encoder, as from the others
    from training.stacks import load_encoders

    pre = load_pixel_model(tmp_path / "run" / "pretrained.pimc").net
    fresh = load_pixel_model(tmp_path / "run" / "classifier.pimc").net
    torch.manual_seed(5)
    fresh.sar_encoder.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    load_encoders(fresh, tmp_path / "run" / "pretrained.pimc")
    for name in ("sar_encoder", "sar_proj"):
        for k, v in getattr(pre, name).state_dict().items():
            torch.testing.assert_close(getattr(fresh, name).state_dict()[k], v)
    model.bind_sources(("sar",))
    assert model.indices == ("vv_db", "vh_db", "rvi")


def test_python_m_training_dispatches_every_command(tmp_path):
    """``python -m training`` reaches the raster commands and the series command (clear errors, exit 2)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    run = lambda *a: subprocess.run([sys.executable, "-m", "training", *a], cwd=root, capture_output=True, text=True)  # noqa: E731
    helped = run("--help")
    assert helped.returncode == 0
    for cmd in ("pretrain", "finetune", "evaluate", "forecast", "series"):
        assert cmd in helped.stdout
    for cmd in ("pretrain", "finetune", "evaluate", "forecast"):
        r = run(cmd, "--config", str(tmp_path / "missing.yaml"))
        assert r.returncode == 2 and f"training {cmd}: error:" in r.stderr and "missing.yaml" in r.stderr
        assert "Traceback" not in r.stderr
        r = run(cmd, "--config", str(CONFIGS / "cpu_demo.yaml"), "pretrain.stepz=3")
        assert r.returncode == 2 and "'stepz'" in r.stderr and "Traceback" not in r.stderr
    r = run("bogus")
    assert r.returncode == 2 and "unknown command 'bogus'" in r.stderr


def test_shipped_report_config_loads():
    from training.report import load_report_config

    cfg = load_report_config(CONFIGS / "report.yaml")
    assert cfg.seeds and cfg.fractions and min(cfg.fractions) > 0


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("fit_*.yaml")), ids=lambda p: p.name)
def test_shipped_fit_configs_load(path):
    from pimc_core.fit import FitConfig, load_fit_config

    cfg = load_fit_config(path)
    assert isinstance(cfg, FitConfig) and cfg.data.indices
