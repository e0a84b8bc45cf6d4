"""The generated Sentinel-1-like stack of ``make_synthetic(sar=True)`` / ``pimc sample-data``:
its own dates, same grid, backscatter following biomass and soil moisture, gamma speckle, masked
nodata and border noise, and optical files left bit-identical."""

from __future__ import annotations

import numpy as np
import pytest

from pimc_core.datasets.synthetic import make_synthetic
from pimc_core.datasets.synthetic_classes import CLASSES
from pimc_core.errors import InputError
from pimc_core.io.timeseries import open_series
from pimc_core.series.indices import compute_indices


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("s1") / "out", size=48, n_dates=12, seed=3, sar=True,
                          cloud_fraction=0.5)


@pytest.fixture(scope="module")
def radar_obs(sample):
    return open_series(sample.sar_manifest).read()


def test_optical_files_are_bit_identical_with_and_without_radar(tmp_path, sample):
    plain = make_synthetic(tmp_path / "plain", size=48, n_dates=12, seed=3, cloud_fraction=0.5)
    assert plain.sar_manifest is None and not (tmp_path / "plain" / "s1").exists()
    names = sorted(p.name for p in plain.outdir.iterdir())
    assert names == sorted(p.name for p in sample.outdir.iterdir() if p.name != "s1")
    for name in names:
        assert (plain.outdir / name).read_bytes() == (sample.outdir / name).read_bytes(), name


def test_radar_stack_has_its_own_dates_on_the_same_grid(sample):
    s1 = open_series(sample.sar_manifest)
    s2 = open_series(sample.manifest)
    assert s1.preset == "sentinel1-grd" and s1.band_names == ("vv", "vh")
    assert s1.grid.difference(s2.grid) is None or not s1.grid.difference(s2.grid)
    steps = np.diff([d.toordinal() for d in s1.dates])
    assert steps.min() >= 6 and steps.max() <= 12
    assert s1.dates[0].year == s1.dates[-1].year == s2.dates[0].year
    assert len(s1) > 2 * len(s2)  # every 6–12 days, whatever the clouds


def test_nodata_and_border_noise_are_masked_on_their_dates_only(sample, radar_obs):
    r = sample.radar
    strip = max(1, 48 // 8)
    valid = radar_obs.valid
    assert not valid[r.nodata_date][:, :strip].any()
    assert not valid[r.noise_date][:, -strip:].any()
    others = np.ones(len(r.dates), bool)
    others[[r.nodata_date, r.noise_date]] = False
    land = sample.scene.labels() != next(c.id for c in CLASSES if c.name == "water")
    assert valid[others][:, land].mean() > 0.99  # elsewhere only dark water can fall below the floor


def test_backscatter_follows_biomass_and_class_structure(sample, radar_obs):
    r, scene = sample.radar, sample.scene
    vh_db = compute_indices(radar_obs.bands(), ["vh_db"])[0]  # (T, H, W)
    labels = scene.labels()
    months = np.array([d.month for d in r.dates])

    def mean_db(cls_name, month_set):
        cid = next(c.id for c in CLASSES if c.name == cls_name)
        sel = np.isin(months, month_set)
        return float(np.nanmean(vh_db[sel][:, labels == cid]))

    # maize: bare in spring, full canopy in July–August, several dB of cross-polarised rise
    assert mean_db("maize", [7, 8]) - mean_db("maize", [3, 4]) > 2.5
    # forests keep a high cross-polarised return in winter; water stays darkest all year
    assert mean_db("coniferous_forest", [1, 2]) - mean_db("maize", [1, 2]) > 3.0
    assert mean_db("water", list(range(1, 13))) < mean_db("maize", list(range(1, 13))) - 3
    # the biomass proxy drives VH: summer crops' VH at low vs high biomass, and a joint fit of
    # VH dB on biomass and soil moisture explains most of its variance
    crops = np.isin(scene.field_class, [2, 3, 4])
    vh = 10 * np.log10(r.sigma0[:, 1, crops])  # (T, F')
    b = r.biomass[:, crops]
    assert vh[b > 0.7].mean() - vh[b < 0.2].mean() > 3.0
    x = np.column_stack([np.ones(b.size), b.ravel(), (b ** 2).ravel(), np.repeat(r.moisture, b.shape[1])])
    resid = vh.ravel() - x @ np.linalg.lstsq(x, vh.ravel(), rcond=None)[0]
    assert 1 - resid.var() / vh.var() > 0.7


def test_soil_moisture_after_rain_raises_bare_soil_backscatter(sample):
    r, scene = sample.radar, sample.scene
    # summer crops are bare soil from January to March: their VV follows the scene's soil moisture
    bare = np.flatnonzero(np.isin(scene.field_class, [2, 3, 4]))
    winter = np.array([d.month in (1, 2, 3) for d in r.dates])
    assert r.biomass[winter][:, bare].max() < 0.1
    vv = 10 * np.log10(r.sigma0[winter][:, 0, bare]).mean(axis=1)
    assert np.corrcoef(vv, r.moisture[winter])[0, 1] > 0.8
    # and soil moisture is higher on a date within two days after rain than on one a week dry
    doys = np.array([d.timetuple().tm_yday for d in r.dates])
    since = np.array([min([d - x for x in r.rain_days if x <= d], default=99) for d in doys])
    assert r.moisture[since <= 2].mean() > r.moisture[since >= 7].mean() + 0.1
    assert r.rain_days.size > 20


def test_speckle_is_multiplicative_gamma_with_the_given_looks(sample, radar_obs):
    r = sample.radar
    t = next(i for i in range(len(r.dates)) if i not in (r.nodata_date, r.noise_date))
    ratio = radar_obs.reflectance[t] / (r.sigma0[t][:, r.fields] * r.texture)  # (2, H, W)
    ratio = ratio[np.isfinite(ratio)]
    assert ratio.mean() == pytest.approx(1.0, abs=0.03)
    assert ratio.var() == pytest.approx(1.0 / r.looks, rel=0.12)


def test_same_seed_same_radar_files(tmp_path, sample):
    again = make_synthetic(tmp_path / "again", size=48, n_dates=12, seed=3, sar=True, cloud_fraction=0.5)
    for p in sorted((sample.outdir / "s1").iterdir()):
        assert (again.outdir / "s1" / p.name).read_bytes() == p.read_bytes(), p.name


def test_a_full_disk_while_writing_the_radar_stack_leaves_no_folder(tmp_path, monkeypatch):
    import errno

    import pimc_core.datasets.synthetic as synthetic

    real = synthetic._write_tif

    def fills_up(path, *a, **k):
        if "S1_" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(synthetic, "_write_tif", fills_up)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=r"s1/S1_2023\d{4}\.tif: cannot write \(no space left on device\)"):
        make_synthetic(out, size=16, n_dates=3, seed=1, sar=True)
    assert list(out.iterdir()) == []
