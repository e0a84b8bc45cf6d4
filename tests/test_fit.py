"""``pimc fit`` end to end on a tiny stack: the .pimc it writes loads as a PixelModel whose
predict gives the protocol's outputs; data / model mismatches are clear errors."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pytest

from pimc_core.datasets.synthetic import make_synthetic
from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.fit import FitConfig, fit, load_fit_config
from pimc_core.io.timeseries import open_series
from pimc_core.models.model_file import read_metadata
from pimc_core.models.pixel_model import PimcPixelModel, load_pixel_model

TINY = {
    "data": {"pretrain_samples": 256, "per_class": 12, "patch_size": 5},
    "model": {"rp_encoder": {"width": 4, "depth": 2, "embed_dim": 8},
              "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
              "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8},
    "pretrain": {"steps": 3, "batch_size": 64, "warmup_steps": 1},
    "finetune": {"epochs": 2, "batch_size": 32, "max_steps": 6},
    "forecast": {"finetune": {"epochs": 1, "batch_size": 64}},
    "threads": 1,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn")
    s = make_synthetic(out, size=24, n_dates=10, seed=4, n_classes=4)
    return s


def test_fit_writes_a_model_that_predicts(stack, tmp_path):
    out = tmp_path / "model.pimc"
    lines: list[str] = []
    res = fit(stack.manifest, stack.labels_sparse, out, classes=stack.classes_json, config=TINY,
              progress=False, log=lines.append)
    assert out.exists() and res.path == out
    assert "4 classes" in res.summary() and str(out) in res.summary()
    assert lines and "labelled pixels" in lines[0]
    meta = read_metadata(out)
    assert meta["task"] == "pixel_classification"
    assert meta["indices"] == ["ndvi", "evi", "savi"] and meta["n_dates"] == 10
    assert meta["dates"] == {"mode": "observed"} and meta["patch_size"] == 5
    assert meta["bands"] == ["blue", "green", "red", "nir", "swir1"]
    assert [c["name"] for c in meta["classes"]] == stack.class_names
    assert meta["forecast_horizon"] == 2 and meta["training"]["forecast_input"] == 8
    assert set(meta["normalisation"]) == {"bands", "indices"}
    assert meta["training"]["pretrain"]["steps"] == 3 and meta["training"]["min_valid"] == 3
    # the file is safetensors, not a pickle
    assert out.read_bytes()[8:9] == b"{"

    model = load_pixel_model(out)
    assert isinstance(model, PimcPixelModel)
    ts = open_series(stack.manifest)
    model.prepare(ts)
    assert model.indices == ("ndvi", "evi", "savi") and model.target_dates is None and model.min_valid == 3
    assert model.n_classes == 4 and [c["id"] for c in model.class_table] == [1, 2, 3, 4]
    assert set(model.outputs) >= {"classes", "confidence", "probabilities", "forecast", "embeddings"}
    assert len(model.forecast_dates) == 2 and model.forecast_dates[0] > ts.dates[-1]
    assert model.patch_size == 5 and model.patch_bands == ("blue", "green", "red", "nir", "swir1")
    rng = np.random.default_rng(0)
    filled = rng.uniform(0, 0.8, (7, 3, 10)).astype(np.float32)
    patches = rng.uniform(0, 0.3, (7, 5, 5, 5)).astype(np.float32)
    patches[:, :, :2, :] = np.nan  # outside the raster, as map inference hands them
    for p in (patches, None):
        pred = model.predict(filled, p)
        assert pred["probabilities"].shape == (7, 4) and pred["probabilities"].dtype == np.float32
        assert np.allclose(pred["probabilities"].sum(1), 1, atol=1e-5)
        assert pred["forecast"].shape == (7, 2)
        assert pred["embeddings"].shape == (7, model.embed_dim)
        assert all(np.isfinite(v).all() for v in pred.values())
    assert set(model.predict(filled, patches, outputs=("probabilities",))) == {"probabilities"}
    assert model.predict(filled[:0], None)["probabilities"].shape == (0, 4)
    with pytest.raises(ConfigError, match="10 dates"):
        model.predict(filled[:, :, :9], None)
    with pytest.raises(InputError, match="NaN"):
        model.predict(np.full((1, 3, 10), np.nan, np.float32), None)


def test_map_inference_uses_the_model(stack, tmp_path):
    from pimc_core.maps.engine import run_inference

    cfg = {**TINY, "forecast": {"enabled": False}}
    out = tmp_path / "m.pimc"
    fit(stack.manifest, stack.labels_sparse, out, config=cfg, progress=False)
    ts = open_series(stack.manifest)
    res = run_inference(ts, out, None, tmp_path / "maps", products=["classes", "confidence", "embeddings"])
    assert res.predicted > 0
    import rasterio

    with rasterio.open(tmp_path / "maps" / "classes.tif") as ds:
        classes = ds.read(1)
    assert set(np.unique(classes)) <= {0, 1, 2, 3, 4} and (classes > 0).mean() > 0.9
    # without classes.json: "class N"
    assert [c["name"] for c in read_metadata(out)["classes"]] == [f"class {i}" for i in (1, 2, 3, 4)]
    # an observed-dates model on a stack of other dates: said without configuration syntax
    other = make_synthetic(tmp_path / "other", size=8, n_dates=12, seed=5, n_classes=4)
    with pytest.raises(ConfigError) as e:
        load_pixel_model(out).prepare(open_series(other.manifest))
    assert "model expects 10 dates" in str(e.value) and "train a model on this stack" in str(e.value)
    assert "dates: grid" not in str(e.value)


def test_missing_band_is_a_band_error(stack, tmp_path):
    # the same stack without the blue band: EVI cannot be computed
    src = tmp_path / "noblue"
    src.mkdir()
    for f in stack.outdir.glob("S2_*.tif"):
        shutil.copy(f, src / f.name)
    text = stack.manifest.read_text().replace("bands: {blue: 1, green: 2", "bands: {green: 2")
    (src / "manifest.yaml").write_text(text)
    ts = open_series(src / "manifest.yaml")
    assert "blue" not in ts.band_names
    with pytest.raises(BandError, match="blue"):
        fit(ts, stack.labels_sparse, tmp_path / "x.pimc", config=TINY, progress=False)
    assert not (tmp_path / "x.pimc").exists()
    # a model trained with blue cannot be applied to it either
    out = tmp_path / "full.pimc"
    fit(stack.manifest, stack.labels_sparse, out, config={**TINY, "pretrain": {"steps": 0}}, progress=False)
    with pytest.raises(BandError, match="blue"):
        load_pixel_model(out).prepare(ts)


def test_cli_fit(stack, tmp_path, capsys):
    import yaml

    from pimc_core.cli import main

    cfg = tmp_path / "fit.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "cli.pimc"
    rc = main(["fit", str(stack.manifest), "--labels", str(stack.labels_sparse), "--out", str(out),
               "--classes", str(stack.classes_json), "--config", str(cfg), "--set", "pretrain.steps=2", "--quiet"])
    assert rc == 0 and out.exists()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "training accuracy" in lines[0]
    assert read_metadata(out)["training"]["pretrain"]["steps"] == 2
    cfg.write_text(yaml.safe_dump({**TINY, "pretrian": {"steps": 1}}))
    rc = main(["fit", str(stack.manifest), "--labels", str(stack.labels_sparse), "--out", str(out), "--config", str(cfg)])
    err = capsys.readouterr().err
    assert rc == 2 and "pretrian" in err and err.startswith("pimc: error:")


def test_vector_labels_and_grid_dates(stack, tmp_path):
    import rasterio
    from rasterio import features
    from rasterio.warp import transform_geom

    with rasterio.open(stack.labels_sparse) as ds:
        lab, tr, crs = ds.read(1), ds.transform, ds.crs
    names = {i + 1: n for i, n in enumerate(stack.class_names)}
    feats = [{"type": "Feature", "properties": {"crop": names[int(v)]},
              "geometry": transform_geom(crs, "EPSG:4326", g)}
             for g, v in features.shapes(lab, mask=lab > 0, transform=tr)]
    vec = tmp_path / "fields.geojson"
    vec.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    cfg = {**TINY, "data": {**TINY["data"], "dates": "grid", "step_days": 40}, "forecast": {"enabled": False}}
    out = tmp_path / "vec.pimc"
    res = fit(stack.manifest, vec, out, classes=stack.classes_json, class_field="crop", config=cfg, progress=False)
    assert res.n_labelled > 0
    meta = read_metadata(out)
    assert meta["dates"] == {"mode": "grid", "start_doy": 1, "step_days": 40} and meta["n_dates"] == 10
    model = load_pixel_model(out)
    model.prepare(open_series(stack.manifest))
    assert model.target_dates[0] == dt.date(2023, 1, 1) and len(model.target_dates) == 10
    assert "forecast" not in model.outputs


def test_fit_is_deterministic_by_seed(stack, tmp_path):
    """Same seed, same thread count: the same weights, bit for bit; another seed: other weights."""
    from safetensors.numpy import load_file

    weights = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp_path / f"{name}.pimc"
        fit(stack.manifest, stack.labels_sparse, out, config={**TINY, "seed": seed}, progress=False, log=lambda m: None)
        weights.append(load_file(str(out)))
    assert weights[0].keys() == weights[1].keys()
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert any(not np.array_equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_fit_config_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="'stepz'"):
        FitConfig.from_dict({"pretrain": {"stepz": 3}})
    with pytest.raises(ConfigError, match="dates"):
        FitConfig.from_dict({"data": {"dates": "weekly"}})
    with pytest.raises(ConfigError, match="unknown key 'nope'"):
        load_fit_config(None, ["data.nope=1"])
    cfg = load_fit_config(None, ["pretrain.lr=5e-4", "finetune.freeze=yes", "data.indices=ndvi"])
    assert cfg.pretrain.lr == 5e-4 and cfg.finetune.freeze is True and cfg.data.indices == ("ndvi",)
    assert cfg.pretrain.steps == FitConfig().pretrain.steps  # the section keeps fit's defaults


def test_fit_without_labels_is_label_free(stack, tmp_path, capsys):
    """No labels: pretraining + forecast head, no classifier; the maps that need no labels work
    and classify says what the model can give instead."""
    import yaml

    from pimc_core.cli import main

    out = tmp_path / "free.pimc"
    res = fit(stack.manifest, None, out, config=TINY, progress=False)
    assert res.classes == [] and res.n_labelled == 0 and "label-free" in res.summary()
    meta = read_metadata(out)
    assert meta["task"] == "forecast" and meta["classes"] == [] and meta["training"]["labels"] is None
    model = load_pixel_model(out)
    assert model.n_classes == 0 and set(model.outputs) == {"embeddings", "forecast"}

    cfg = tmp_path / "fit.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    cli_model = tmp_path / "cli_free.pimc"
    assert main(["fit", str(stack.manifest), "--out", str(cli_model), "--config", str(cfg), "--quiet"]) == 0
    assert "label-free" in capsys.readouterr().out
    maps = tmp_path / "maps"
    assert main(["cluster", str(stack.manifest), "--model", str(cli_model), "--k", "3", "--out", str(maps), "--quiet"]) == 0
    assert main(["forecast", str(stack.manifest), "--model", str(cli_model), "--out", str(maps), "--quiet"]) == 0
    assert sorted(p.name for p in maps.glob("*.tif")) == ["clusters.tif", "forecast.tif"]
    capsys.readouterr()
    assert main(["classify", str(stack.manifest), "--model", str(cli_model), "--out", str(maps), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot give classes (it was trained without labels)" in err and "embeddings, forecast" in err
    assert "PimcPixelModel" not in err  # no class names of the code
    assert not (maps / "classes.tif").exists()
    # --classes without --labels is a user error, not a silent no-op
    assert main(["fit", str(stack.manifest), "--out", str(cli_model), "--classes", str(stack.classes_json)]) == 2
    assert "--labels" in capsys.readouterr().err


def test_seasonal_patches_round_trip(stack, tmp_path):
    """``data.reference: seasonal:K``: the model keeps K composites' worth of patch channels,
    reads the stack bands for them, and map inference cuts the same composites."""
    import rasterio

    from pimc_core.maps.engine import run_inference

    cfg = {**TINY, "data": {**TINY["data"], "reference": "seasonal:3", "patch_bands": ["red", "nir"]},
           "forecast": {"enabled": False}}
    out = tmp_path / "s.pimc"
    fit(stack.manifest, stack.labels_sparse, out, config=cfg, progress=False)
    meta = read_metadata(out)
    assert meta["bands"] == ["red", "nir"]  # what is read from the stack
    assert meta["training"]["patch_reference"] == "seasonal:3"
    assert meta["training"]["patch_bands"] == ["s1_red", "s1_nir", "s2_red", "s2_nir", "s3_red", "s3_nir"]
    assert len(meta["training"]["patch_normalisation"]["mean"]) == 6
    model = load_pixel_model(out)
    assert model.patch_size == 5 and model.patch_bands == ("red", "nir") and model.patch_channels == 6
    ts = open_series(stack.manifest)
    with pytest.raises(ConfigError, match="prepare"):
        model.patch_composite(np.zeros((10, 2, 4, 4), np.float32), np.ones((10, 4, 4), bool))
    model.prepare(ts)
    obs = ts.read(bands=("red", "nir"))
    assert model.patch_composite(obs.reflectance, obs.valid).shape == (6, 24, 24)
    res = run_inference(ts, out, None, tmp_path / "maps", products=["classes"])
    assert res.predicted > 0
    with rasterio.open(tmp_path / "maps" / "classes.tif") as ds:
        assert (ds.read(1) > 0).mean() > 0.9
    with pytest.raises(ConfigError, match="data.reference"):
        FitConfig.from_dict({"data": {"reference": "seasonal:0"}})
