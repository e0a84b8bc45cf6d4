"""A model is checked against the source before anything is computed: bands, season / date grid
and pixel size, each refusal one sentence naming both sides (pimc_core.maps.suitability, used by
every map run, the panel and the Processing algorithms)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pimc_core.cli import main
from pimc_core.datasets.landsat_sample import landsat_sample_dir
from pimc_core.datasets.synthetic import make_synthetic
from pimc_core.errors import BandError, ConfigError
from pimc_core.io.timeseries import open_series
from pimc_core.maps.suitability import check_model_source, describe_trained
from pimc_core.models.pixel_model import load_pixel_model
from tests.conftest import left_nothing

COMPAT = Path(__file__).parent / "data" / "compat_89cc375"
#: the label-free Landsat model of training/configs/fit_landsat.yaml, with tiny networks and steps
LANDSAT_FIT = {
    "data": {"indices": ["ndvi", "savi", "evi2"], "pretrain_samples": 128, "patch_size": 0, "dates": "grid",
             "step_days": 16, "start_doy": 100, "n_dates": 118, "min_valid": 20},
    "model": {"rp_encoder": {"width": 4, "depth": 2, "embed_dim": 8},
              "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
              "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8},
    "pretrain": {"steps": 2, "batch_size": 64, "warmup_steps": 1},
    "forecast": {"horizon": 4, "input_len": 16, "max_windows": 4,
                 "finetune": {"epochs": 1, "batch_size": 64, "max_steps": 2}},
    "threads": 1,
}


@pytest.fixture(scope="module")
def landsat_model(tmp_path_factory):
    from pimc_core.fit import fit

    root = tmp_path_factory.mktemp("landsat_model")
    fit(str(landsat_sample_dir()), None, root / "landsat.pimc", config=LANDSAT_FIT, progress=False)
    s2 = make_synthetic(root / "s2", size=16, n_dates=24, seed=0)
    return root / "landsat.pimc", s2.manifest


def test_the_landsat_model_on_the_2023_stack_is_refused_naming_both_sides(landsat_model):
    model, s2 = landsat_model
    with pytest.raises(ConfigError) as e:
        check_model_source(str(model), open_series(s2))
    msg = str(e.value)
    assert "\n" not in msg
    assert re.search(r"model landsat\.pimc was trained on the season 2008-04-09\.\.2013-05-25 \(118 dates\); "
                     r".*s2/manifest\.yaml has 24 dates 2023-\d\d-\d\d\.\.2023-\d\d-\d\d", msg), msg
    assert "(model: Landsat 4-7 SR (ESPA) data (red, nir, swir1); source: Sentinel-2 L2A data" in msg, msg


def test_the_command_line_refuses_it_before_any_pixel(landsat_model, capsys, tmp_path):
    model, s2 = landsat_model
    code = main(["forecast", str(s2), "--model", str(model), "--out", str(tmp_path / "o"), "--quiet"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and "landsat.pimc was trained on the season 2008-04-09" in err[0], err
    assert left_nothing(tmp_path / "o")


def test_a_fitting_pair_passes_with_a_summary(landsat_model):
    model, _ = landsat_model
    fit = check_model_source(str(model), open_series(landsat_sample_dir()))
    assert fit.summary.startswith(f"model landsat.pimc fits {landsat_sample_dir().name}: ")
    assert "ndvi, savi, evi2 from red, nir; a 118-date grid 2008-04-09..2013-05-25" in fit.summary
    assert "Landsat 4-7 SR (ESPA)" in fit.summary
    assert describe_trained(fit.model) == ("trained on Landsat 4-7 SR (ESPA) data (red, nir, swir1) "
                                           "2008-04-19..2013-05-27 (105 dates)")


def test_a_model_that_needs_a_band_the_source_lacks(capsys, tmp_path):
    with pytest.raises(BandError) as e:
        check_model_source(str(COMPAT / "model.pimc"), open_series(landsat_sample_dir()))
    msg = str(e.value)
    assert msg.startswith("model model.pimc needs band 'blue' (for evi; it reads ndvi, evi, savi); source ")
    assert "has red, nir, swir1 (Landsat 4-7 SR (ESPA), DN × 0.0001, fmask mask)" in msg, msg


def test_a_patch_model_on_another_pixel_size(tmp_path):
    model = load_pixel_model(COMPAT / "model.pimc")
    stack = open_series(COMPAT / "stack" / "manifest.yaml")
    assert check_model_source(model, stack, "model.pimc").info.patch_size == 5  # its own stack fits
    model.metadata.setdefault("training", {})["stack"] = {
        "preset": "landsat89-c2l2", "bands": ["red", "nir"], "crs": "EPSG:32631", "pixel_size": [30.0, 30.0]}
    with pytest.raises(ConfigError, match=r"model model\.pimc reads 5×5-pixel patches of 30 m pixels \(trained on "
                                          r"Landsat 8/9 C2 L2 data \(red, nir\), EPSG:32631\); source .* has 10 m"):
        check_model_source(model, stack, "model.pimc")
