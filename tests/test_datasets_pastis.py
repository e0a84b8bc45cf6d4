"""PASTIS loader on a tiny root written in the published on-disk format."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from pimc_core.datasets import PASTIS_CLASSES, PastisDataset, band_mapping, class_table, extract_patches
from pimc_core.datasets.pastis import BAND_NAMES
from pimc_core.errors import ConfigError, InputError
from pimc_core.series.indices import compute_indices

SIZE = 16


def _dates(start: dt.date, n: int, step: int) -> list[dt.date]:
    return [start + dt.timedelta(days=step * i) for i in range(n)]


def write_pastis(root, patches, *, dates_as_string=False):
    """patches: list of (id, fold, dates, x int16 (T,10,H,W), target (3,H,W) or (H,W))."""
    (root / "DATA_S2").mkdir(parents=True)
    (root / "ANNOTATIONS").mkdir()
    feats = []
    for pid, fold, dates, x, y in patches:
        np.save(root / "DATA_S2" / f"S2_{pid}.npy", x)
        np.save(root / "ANNOTATIONS" / f"TARGET_{pid}.npy", y)
        d = {str(i): int(f"{day:%Y%m%d}") for i, day in enumerate(dates)}
        feats.append({
            "type": "Feature",
            "id": str(pid),
            "properties": {
                "ID_PATCH": pid, "Fold": fold, "N_Parcel": 3, "Parcel_Cover": 0.5, "TILE": "t30uxv",
                "dates-S2": json.dumps(d) if dates_as_string else d,
            },
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]},
        })
    doc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}},
           "features": feats}
    (root / "metadata.geojson").write_text(json.dumps(doc))
    return root


def make_patches(rng):
    """3 patches: T = 5 and 7; folds 1, 2, 4; 3-D targets except one 2-D."""
    out = []
    for pid, fold, T, start in ((10000, 1, 5, dt.date(2018, 9, 20)), (10001, 2, 7, dt.date(2018, 9, 25)),
                                (20002, 4, 5, dt.date(2018, 10, 1))):
        x = rng.integers(1, 8000, size=(T, 10, SIZE, SIZE)).astype(np.int16)
        sem = rng.integers(0, 20, size=(SIZE, SIZE)).astype(np.uint8)
        sem[:4, :] = 0  # background rows
        sem[4, :] = 19  # void row
        y = np.stack([sem, sem, sem]) if pid != 10001 else sem
        out.append((pid, fold, _dates(start, T, 20), x, y))
    return out


@pytest.fixture
def pastis(tmp_path):
    rng = np.random.default_rng(0)
    patches = make_patches(rng)
    return write_pastis(tmp_path / "PASTIS", patches), patches


def test_folds_selection_and_dates(pastis):
    root, patches = pastis
    ds = PastisDataset(root)  # default folds 1, 2, 3
    assert ds.patch_ids == [10000, 10001]
    assert len(ds) == 2
    assert ds.dates(10001) == patches[1][2]
    assert ds.fold("10001") == 2  # string ids accepted
    assert PastisDataset(root, folds="val").patch_ids == [20002]
    assert PastisDataset(root, folds=(1, 2, 3, 4, 5)).patch_ids == [10000, 10001, 20002]
    assert PastisDataset(root, folds="test").patch_ids == []
    with pytest.raises(InputError, match="fold 4, not in the selected folds"):
        ds.load_patch(20002)
    with pytest.raises(InputError, match="not in"):
        ds.load_patch(99999)
    for bad in (0, (1, 6), "training", (), (True,)):
        with pytest.raises(ConfigError, match="folds"):
            PastisDataset(root, folds=bad)


def test_load_patch_round_trip(pastis):
    root, patches = pastis
    ds = PastisDataset(root, folds=(1, 2, 4))
    for pid, _, dates, x_dn, y_raw in patches:
        x, y, d = ds.load_patch(pid)
        assert x.dtype == np.float32 and x.shape == x_dn.shape
        np.testing.assert_allclose(x, x_dn.astype(np.float64) * 1e-4, rtol=1e-6)
        sem = y_raw[0] if y_raw.ndim == 3 else y_raw  # 3-D: class in channel 0
        np.testing.assert_array_equal(y, sem)
        assert y.dtype == np.int64 and y.shape == (SIZE, SIZE)
        assert d == dates
    assert PASTIS_CLASSES[0] == "Background" and PASTIS_CLASSES[19] == "Void label" and len(PASTIS_CLASSES) == 20
    assert [c["id"] for c in class_table(exclude=(0, 19))] == list(range(1, 19))


def test_dates_as_json_string(tmp_path):
    patches = make_patches(np.random.default_rng(1))
    root = write_pastis(tmp_path / "P", patches, dates_as_string=True)
    ds = PastisDataset(root, folds=(1, 2))
    assert ds.dates(10000) == patches[0][2]


def test_sample_pixels_excludes_background_and_void(pastis):
    root, patches = pastis
    ds = PastisDataset(root)
    s = ds.sample_pixels(60, seed=3)
    n = len(s["labels"])
    assert n == 60
    assert s["series"].shape == (n, len(s["dates"]), 10) and s["series"].dtype == np.float32
    assert not np.isin(s["labels"], [0, 19]).any()
    assert set(np.unique(s["patch_ids"])) <= {10000, 10001}
    assert s["band_names"] == BAND_NAMES
    # default grid: every 10 days over the span of the selected patches
    first = min(patches[0][2][0], patches[1][2][0])
    assert s["dates"][0] == first and all((b - a).days == 10 for a, b in zip(s["dates"], s["dates"][1:]))
    # labels / coordinates consistent with the files; series interpolates the raw values
    by_id = {p[0]: p for p in patches}
    for i in range(0, n, 7):
        pid, r, c = int(s["patch_ids"][i]), int(s["rows"][i]), int(s["cols"][i])
        _, _, dates, x_dn, y_raw = by_id[pid]
        sem = y_raw[0] if y_raw.ndim == 3 else y_raw
        assert s["labels"][i] == sem[r, c]
        ordinals = np.array([d.toordinal() for d in dates])
        for t, d in enumerate(s["dates"]):
            expect = [np.interp(d.toordinal(), ordinals, x_dn[:, b, r, c] * 1e-4) for b in range(10)]
            np.testing.assert_allclose(s["series"][i, t], expect, rtol=1e-4, atol=1e-6)
    # deterministic for a seed, different for another
    s2 = ds.sample_pixels(60, seed=3)
    np.testing.assert_array_equal(s2["rows"], s["rows"])
    np.testing.assert_array_equal(s2["series"], s["series"])
    s3 = ds.sample_pixels(60, seed=4)
    assert not (np.array_equal(s3["rows"], s["rows"]) and np.array_equal(s3["cols"], s["cols"]))
    # no pixel twice
    keys = set(zip(s["patch_ids"].tolist(), s["rows"].tolist(), s["cols"].tolist()))
    assert len(keys) == n
    # feeds compute_indices through the canonical band names
    vi = compute_indices(band_mapping(s["series"]), ("ndvi", "evi", "savi"))
    assert vi.shape == (3, n, len(s["dates"])) and np.isfinite(vi[0]).all()


def test_sample_pixels_per_class_and_target_dates(pastis):
    root, _ = pastis
    ds = PastisDataset(root)
    grid = [dt.date(2018, 10, 1) + dt.timedelta(days=15 * i) for i in range(4)]
    s = ds.sample_pixels(per_class=2, seed=0, target_dates=grid, exclude_classes=(0, 19, 5))
    classes, counts = np.unique(s["labels"], return_counts=True)
    assert not np.isin(classes, [0, 5, 19]).any()
    assert counts.max() <= 2 and len(classes) >= 10
    assert s["series"].shape == (len(s["labels"]), 4, 10) and s["dates"] == grid
    # asking for more pixels than exist returns them all
    everything = ds.sample_pixels(10**6, seed=0)
    n_eligible = sum(int((~np.isin(ds.labels(p), [0, 19])).sum()) for p in ds.patch_ids)
    assert len(everything["labels"]) == n_eligible
    with pytest.raises(ConfigError, match="either n"):
        ds.sample_pixels(10, per_class=2)
    with pytest.raises(ConfigError, match="either n"):
        ds.sample_pixels()
    with pytest.raises(InputError, match="no pixel to sample"):
        ds.sample_pixels(5, exclude_classes=range(20))


def test_patches_at_borders(pastis):
    root, _ = pastis
    ds = PastisDataset(root)
    ref = ds.reference_image(10000)
    x, _, _ = ds.load_patch(10000)
    np.testing.assert_allclose(ref, np.median(x, axis=0), rtol=1e-5)
    rows, cols = np.array([0, 7, SIZE - 1]), np.array([0, 8, SIZE - 1])
    p = ds.patches(10000, rows, cols, size=5)
    assert p.shape == (3, 10, 5, 5) and p.dtype == np.float32
    np.testing.assert_allclose(p[1], ref[:, 5:10, 6:11])  # interior: plain window, pixel at centre
    np.testing.assert_allclose(p[:, :, 2, 2], ref[:, rows, cols].T)
    # top-left corner: reflect padding mirrors rows/cols 1, 2 (edge not repeated)
    np.testing.assert_allclose(p[0, :, 2:, 2:], ref[:, 0:3, 0:3])
    np.testing.assert_allclose(p[0, :, 0, 2:], ref[:, 2, 0:3])
    np.testing.assert_allclose(p[0, :, 1, 1], ref[:, 1, 1])
    np.testing.assert_allclose(p[0, :, 0, 0], ref[:, 2, 2])
    # bottom-right corner
    np.testing.assert_allclose(p[2, :, 3, 3], ref[:, SIZE - 2, SIZE - 2])
    # through sample_pixels too
    s = ds.sample_pixels(10, seed=1, patch_size=3)
    assert s["patches"].shape == (10, 10, 3, 3)
    np.testing.assert_allclose(s["patches"][:, :, 1, 1],
                               np.stack([ds.reference_image(int(i))[:, r, c]
                                         for i, r, c in zip(s["patch_ids"], s["rows"], s["cols"])]))
    # even size: pixel at index size // 2; generic helper rejects pixels outside
    e = extract_patches(np.arange(16.0).reshape(1, 4, 4), [2], [2], 4)
    np.testing.assert_array_equal(e[0, 0], np.arange(16.0).reshape(4, 4))
    with pytest.raises(InputError, match="outside"):
        extract_patches(ref, [SIZE], [0], 3)
    with pytest.raises(ConfigError, match="patch size"):
        ds.patches(10000, [0], [0], size=0)


def test_missing_things(tmp_path):
    patches = make_patches(np.random.default_rng(2))
    with pytest.raises(InputError, match="PASTIS folder not found"):
        PastisDataset(tmp_path / "nowhere")
    root = write_pastis(tmp_path / "P", patches)
    (root / "metadata.geojson").rename(root / "meta.bak")
    with pytest.raises(InputError, match="metadata.geojson: PASTIS metadata file not found"):
        PastisDataset(root)
    (root / "meta.bak").rename(root / "metadata.geojson")
    (root / "DATA_S2" / "S2_10001.npy").unlink()
    with pytest.raises(InputError, match=r"S2_10001\.npy: data file of patch 10001"):
        PastisDataset(root)
    PastisDataset(root, folds=(1, 4))  # the missing patch is not selected: fine
    (root / "metadata.geojson").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        PastisDataset(root)
    (root / "metadata.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"ID_PATCH": 1, "Fold": 1}, "geometry": None}]}))
    with pytest.raises(InputError, match="lacks property 'dates-S2'"):
        PastisDataset(root)
    import shutil

    shutil.rmtree(root / "ANNOTATIONS")
    with pytest.raises(InputError, match="ANNOTATIONS: PASTIS folder not found"):
        PastisDataset(root)


def test_inconsistent_t_and_bad_arrays(tmp_path):
    patches = make_patches(np.random.default_rng(3))
    pid, fold, dates, x, y = patches[0]
    patches[0] = (pid, fold, dates[:-1], x, y)  # metadata lists 4 dates, array has 5
    root = write_pastis(tmp_path / "P", patches)
    ds = PastisDataset(root)
    with pytest.raises(InputError, match="5 time steps, but metadata.geojson lists 4 dates-S2 for patch 10000"):
        ds.load_patch(10000)
    with pytest.raises(InputError, match="5 time steps"):
        ds.sample_pixels(5)
    np.save(root / "DATA_S2" / "S2_10001.npy", np.zeros((7, 4, SIZE, SIZE), np.int16))
    with pytest.raises(InputError, match=r"expected an array \(T, 10, H, W\)"):
        ds.load_patch(10001)
    (root / "DATA_S2" / "S2_10001.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a readable .npy"):
        ds.load_patch(10001)
    np.save(root / "DATA_S2" / "S2_10001.npy", np.zeros((7, 10, SIZE, SIZE), np.int16))
    np.save(root / "ANNOTATIONS" / "TARGET_10001.npy", np.zeros((SIZE, SIZE + 1), np.uint8))
    with pytest.raises(InputError, match="labels are 16x17"):
        ds.load_patch(10001)


def test_nodata_and_unsorted_dates(tmp_path):
    """All-zero observations are no-data; metadata listed out of order is put in order."""
    rng = np.random.default_rng(4)
    T = 4
    dates = [dt.date(2019, 1, 1), dt.date(2019, 1, 21), dt.date(2019, 1, 11), dt.date(2019, 1, 31)]
    x = rng.integers(100, 5000, size=(T, 10, 4, 4)).astype(np.int16)
    x[1, :, 0, 1] = 0  # no-data at (0, 1) on 2019-01-21
    y = np.full((3, 4, 4), 2, np.uint8)
    root = write_pastis(tmp_path / "P", [(7, 1, dates, x, y)])
    ds = PastisDataset(root)
    xs, _, d = ds.load_patch(7)
    assert d == sorted(dates)
    np.testing.assert_allclose(xs[1], x[2] * 1e-4, rtol=1e-6)
    s = ds.sample_pixels(16, seed=0, target_dates=sorted(dates), min_valid=3)
    i = int(np.flatnonzero((s["rows"] == 0) & (s["cols"] == 1))[0])
    # 01-21 is interpolated between 01-11 and 01-31 instead of being 0
    expect = 0.5 * (x[2, :, 0, 1] + x[3, :, 0, 1]) * 1e-4
    np.testing.assert_allclose(s["series"][i, 2], expect, rtol=1e-4)


def test_duplicate_dates_are_averaged_and_empty_selection(tmp_path):
    dates = [dt.date(2019, 3, 1), dt.date(2019, 3, 11), dt.date(2019, 3, 11), dt.date(2019, 3, 21)]
    x = np.random.default_rng(5).integers(100, 5000, size=(4, 10, 3, 3)).astype(np.int16)
    root = write_pastis(tmp_path / "P", [(1, 5, dates, x, np.full((3, 3), 7, np.uint8))])
    ds = PastisDataset(root, folds="test")
    s = ds.sample_pixels(9, seed=0, target_dates=sorted(set(dates)))
    assert s["series"].shape == (9, 3, 10)
    i = int(np.flatnonzero((s["rows"] == 2) & (s["cols"] == 0))[0])
    np.testing.assert_allclose(s["series"][i, 1], (x[1, :, 2, 0] + x[2, :, 2, 0]) * 0.5e-4, rtol=1e-5)
    with pytest.raises(InputError, match="no patch in folds 1, 2, 3"):
        PastisDataset(root).sample_pixels(5)
