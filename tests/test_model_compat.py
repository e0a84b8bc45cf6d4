"""A ``.pimc`` file written by an earlier PIMC still loads and gives the same maps.

``tests/data/compat_89cc375`` holds a small model written by ``pimc fit`` at commit 89cc375
(main on 2026-12-05, before pimc_core was laid out by stage), the 32 × 32 px, 10-date synthetic
stack it was fitted on (``pimc sample-data --size 32 --dates 10 --seed 7``), the fit configuration
and the class, confidence and forecast maps ``pimc classify`` / ``pimc forecast`` wrote with that
code. Any later change to reading, index series, recurrence plots, networks or the map engine that
moves these maps shows here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from pimc_core.cli import main

DATA = Path(__file__).parent / "data" / "compat_89cc375"


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_model_file_of_89cc375_gives_the_same_maps(tmp_path):
    expected = np.load(DATA / "expected_maps.npz")
    manifest = str(DATA / "stack" / "manifest.yaml")
    model = str(DATA / "model.pimc")
    assert main(["classify", manifest, "--model", model, "--out", str(tmp_path / "map"), "--probabilities",
                 "--quiet"]) == 0
    assert main(["forecast", manifest, "--model", model, "--out", str(tmp_path / "fc"), "--quiet"]) == 0

    classes = _read(tmp_path / "map" / "classes.tif")[0]
    assert classes.shape == expected["classes"].shape
    assert (classes == expected["classes"]).mean() >= 0.995
    np.testing.assert_allclose(_read(tmp_path / "map" / "confidence.tif")[0], expected["confidence"], atol=1e-4)
    np.testing.assert_allclose(_read(tmp_path / "fc" / "forecast.tif"), expected["forecast"], atol=1e-4)

    # uncertainty (added later) is the normalised entropy of the probabilities the classes come from
    prob = _read(tmp_path / "map" / "probabilities.tif").astype(np.float64)
    unc = _read(tmp_path / "map" / "uncertainty.tif")[0]
    ok = np.isfinite(prob).all(axis=0)
    assert ok.sum() > 0 and np.array_equal(ok, np.isfinite(unc))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(prob > 0, prob * np.log(prob), 0.0).sum(axis=0) / np.log(prob.shape[0])
    np.testing.assert_allclose(unc[ok], h[ok], atol=1e-5)
    assert 0.0 <= unc[ok].min() and unc[ok].max() <= 1.0

    # accuracy on the labelled pixels the model was not fitted on: 0.620 at 89cc375
    truth = _read(DATA / "stack" / "labels.tif")[0]
    fitted = _read(DATA / "stack" / "labels_sparse.tif")[0]
    withheld = (truth > 0) & (fitted == 0)
    assert withheld.sum() == 482
    acc = float((classes[withheld] == truth[withheld]).mean())
    assert abs(acc - 0.6203) < 0.005
