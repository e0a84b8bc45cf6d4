"""``--sar S1_SOURCE``: a radar series read beside the optical one on the same grid (union of
dates), the index channels chosen by what is given, and ``pimc fit`` / ``pimc classify`` with S2
and S1, S1 alone, and the errors for a radar source on another grid or an optical one."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import yaml

from pimc_core.cli import main
from pimc_core.datasets.synthetic import make_synthetic
from pimc_core.errors import InputError
from pimc_core.io.sar_source import SarSeries, is_radar, with_sar
from pimc_core.io.timeseries import open_series
from pimc_core.models.model_file import read_metadata
from pimc_core.series.indices import INDICES
from pimc_core.series.pixel import index_series
from pimc_core.series.radar import DEFAULT_RADAR_INDICES, indices_for_bands
from tests.test_fit import TINY as FIT_TINY

TINY = {**FIT_TINY, "forecast": {"enabled": False}}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("sar") / "s", size=24, n_dates=10, seed=4, n_classes=4, sar=True)


def test_optical_and_radar_read_together_on_the_union_of_dates(sample):
    s2, s1 = open_series(sample.manifest), open_series(sample.sar_manifest)
    ts = with_sar(s2, s1)
    assert isinstance(ts, SarSeries) and is_radar(s1) and not is_radar(s2)
    assert ts.band_names == ("blue", "green", "red", "nir", "swir1", "vv", "vh")
    assert ts.dates == tuple(sorted(set(s2.dates) | set(s1.dates))) and len(ts) == len(ts.dates)
    assert "radar: Sentinel-1 GRD" in ts.reading and ts.record()["sar"]["preset"] == "sentinel1-grd"
    obs = ts.read()
    o2, o1 = s2.read(), s1.read()
    rows2 = [ts.dates.index(d) for d in s2.dates]
    rows1 = [ts.dates.index(d) for d in s1.dates]
    np.testing.assert_array_equal(obs.band("red")[rows2], o2.band("red"))
    np.testing.assert_array_equal(obs.band("vh")[rows1], o1.band("vh"))
    only1 = [i for i, d in enumerate(ts.dates) if d not in s2.dates]
    assert np.isnan(obs.band("red")[only1]).all()
    np.testing.assert_array_equal(obs.valid[rows1], obs.valid[rows1] | o1.valid)
    # each index from its own source's observations, on a common date grid
    series = index_series(obs, ("ndvi", "vh_db"), target_dates=s2.dates)
    assert series.filled.shape == (2, len(s2.dates), 24, 24) and series.ok.mean() > 0.9
    # a window read of only radar bands reads the radar source alone
    part = ts.read(bands=["vv"])
    assert part.reflectance.shape == (len(ts), 1, 24, 24)


def test_radar_on_another_grid_or_an_optical_sar_is_refused(sample, tmp_path):
    other = make_synthetic(tmp_path / "o", size=16, n_dates=4, seed=1, n_classes=2, sar=True)
    s2 = open_series(sample.manifest)
    with pytest.raises(InputError, match=r"--sar .*o/s1/manifest.yaml is not on the grid of the optical source "
                                         r".*s/manifest.yaml: shape 16x16 instead of 24x24"):
        with_sar(s2, open_series(other.sar_manifest))
    with pytest.raises(InputError, match=r"s/manifest.yaml: not a radar source \(Sentinel-2 L2A"):
        with_sar(s2, s2)
    with pytest.raises(InputError, match="is a radar source already"):
        with_sar(open_series(sample.sar_manifest), open_series(sample.sar_manifest))


def test_index_channels_chosen_by_what_is_given():
    optical = ("blue", "red", "nir")
    both = optical + ("vv", "vh")
    assert indices_for_bands(("ndvi", "evi"), optical, INDICES) == ("ndvi", "evi")
    assert indices_for_bands(("ndvi", "evi"), both, INDICES) == ("ndvi", "evi") + DEFAULT_RADAR_INDICES
    assert indices_for_bands(("ndvi", "rvi"), both, INDICES) == ("ndvi", "rvi")
    assert indices_for_bands(("ndvi", "evi"), ("vv", "vh"), INDICES) == DEFAULT_RADAR_INDICES
    assert indices_for_bands(("vh_vv_db",), ("vv", "vh"), INDICES) == ("vh_vv_db",)


def test_fit_and_classify_with_sar_s1_alone_and_refusals(sample, tmp_path, capsys):
    cfg = tmp_path / "fit.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    both, s1 = tmp_path / "both.pimc", tmp_path / "s1.pimc"
    common = ["--labels", str(sample.labels_sparse), "--classes", str(sample.classes_json), "--config", str(cfg)]
    assert main(["fit", str(sample.manifest), "--sar", str(sample.sar_manifest), "--out", str(both), *common]) == 0
    assert "indices: ndvi, evi, savi, vv_db, vh_db, rvi" in capsys.readouterr().err
    meta = read_metadata(both)
    assert meta["indices"] == ["ndvi", "evi", "savi", "vv_db", "vh_db", "rvi"]
    assert main(["classify", str(sample.manifest), "--sar", str(sample.sar_manifest), "--model", str(both),
                 "--out", str(tmp_path / "map_both"), "--quiet"]) == 0
    with rasterio.open(tmp_path / "map_both" / "classes.tif") as ds:
        classes = ds.read(1)
    assert set(np.unique(classes)) - {0} <= set(sample.class_ids) and (classes > 0).mean() > 0.9
    # the model with a radar modality maps from either source alone too
    arch = meta["architecture"]["pimc"]
    assert arch["radar_modality"] and "sar_encoder" in meta["architecture"]
    capsys.readouterr()
    assert main(["info", str(both)]) == 0
    assert "sources:  optical and radar (vv_db, vh_db, rvi: a modality of its own)" in capsys.readouterr().out
    for name, src in (("m_s2", sample.manifest), ("m_s1", sample.sar_manifest)):
        assert main(["classify", str(src), "--model", str(both), "--out", str(tmp_path / name), "--quiet"]) == 0
        with rasterio.open(tmp_path / name / "classes.tif") as ds:
            alone = ds.read(1)
        assert set(np.unique(alone)) - {0} <= set(sample.class_ids) and (alone > 0).mean() > 0.9
    # early fusion (every index a channel of the same branches) needs both: one line asking for --sar
    early = tmp_path / "early.pimc"
    assert main(["fit", str(sample.manifest), "--sar", str(sample.sar_manifest), "--out", str(early), *common,
                 "--set", "model.radar_modality=false", "--quiet"]) == 0
    assert not read_metadata(early)["architecture"]["pimc"]["radar_modality"]
    capsys.readouterr()
    assert main(["classify", str(sample.manifest), "--model", str(early), "--out", str(tmp_path / "m2"), "--quiet"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs band 'vv'" in err[0] and "--sar S1_SOURCE" in err[0]
    # the radar source alone: a radar model, mapped from the radar source
    assert main(["fit", str(sample.sar_manifest), "--out", str(s1), *common, "--quiet"]) == 0
    assert read_metadata(s1)["indices"] == list(DEFAULT_RADAR_INDICES)
    assert main(["classify", str(sample.sar_manifest), "--model", str(s1), "--out", str(tmp_path / "map_s1"),
                 "--quiet"]) == 0
    with rasterio.open(tmp_path / "map_s1" / "classes.tif") as ds:
        assert (ds.read(1) > 0).mean() > 0.9


def test_text_fit_and_query_with_sar(sample, tmp_path):
    """``pimc text-fit`` and ``pimc query`` take ``--sar`` like the map commands; the model with
    a radar modality answers from the optical source alone as well."""
    cfg = tmp_path / "fit.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    both, text = tmp_path / "both.pimc", tmp_path / "text.pimc"
    sar = ["--sar", str(sample.sar_manifest)]
    assert main(["fit", str(sample.manifest), *sar, "--out", str(both), "--labels", str(sample.labels_sparse),
                 "--classes", str(sample.classes_json), "--config", str(cfg), "--quiet"]) == 0
    assert main(["text-fit", str(sample.manifest), *sar, "--model", str(both), "--out", str(text), "--labels",
                 str(sample.labels), "--classes", str(sample.classes_json), "--epochs", "2", "--pixels", "200",
                 "--quiet"]) == 0
    for name, extra in (("q_both", sar), ("q_s2", [])):
        assert main(["query", str(sample.manifest), *extra, "--model", str(text), "--text", "green-up in April",
                     "--out", str(tmp_path / name), "--quiet"]) == 0
        with rasterio.open(tmp_path / name / "similarity.tif") as ds:
            sim = ds.read(1)
        assert np.isfinite(sim).mean() > 0.9 and np.nanmax(np.abs(sim)) <= 1.0
