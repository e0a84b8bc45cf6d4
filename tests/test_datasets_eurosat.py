"""EuroSAT loader on tiny roots in both published variants (13-band GeoTIFF, RGB JPEG)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from pimc_core.datasets import EUROSAT_MS_BANDS, EuroSATDataset, stratified_split
from pimc_core.errors import BandError, ConfigError, InputError

CLASSES = ("AnnualCrop", "Forest", "SeaLake")
N_PER_CLASS = 4


def write_ms(path, data):
    """(13, 64, 64) uint16 → GeoTIFF, as in EuroSATallBands (UTM, 10 m)."""
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=data.shape[0],
                       dtype=data.dtype, crs="EPSG:32633",
                       transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)) as dst:
        dst.write(data)


@pytest.fixture
def ms_root(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "EuroSATallBands"
    data = {}
    for cls in CLASSES:
        (root / cls).mkdir(parents=True)
        for k in range(1, N_PER_CLASS + 1):
            arr = rng.integers(0, 10000, size=(13, 64, 64)).astype(np.uint16)
            write_ms(root / cls / f"{cls}_{k}.tif", arr)
            data[f"{cls}_{k}"] = arr
    return root, data


@pytest.fixture
def rgb_root(tmp_path):
    root = tmp_path / "2750"
    data = {}
    for ci, cls in enumerate(CLASSES):
        (root / cls).mkdir(parents=True)
        for k in range(1, N_PER_CLASS + 1):
            # smooth image so JPEG compression stays close to the written values
            yy, xx = np.mgrid[0:64, 0:64]
            arr = np.stack([(xx * 3 + 20 * k) % 256, (yy * 3 + 40 * ci) % 256,
                            np.full((64, 64), 60 * ci + 10 * k)], axis=-1).astype(np.uint8)
            Image.fromarray(arr, "RGB").save(root / cls / f"{cls}_{k}.jpg", quality=95)
            data[f"{cls}_{k}"] = arr
    return root, data


def test_ms_round_trip(ms_root):
    root, data = ms_root
    ds = EuroSATDataset(root)
    assert ds.variant == "ms" and ds.classes == list(CLASSES)
    assert len(ds) == 12 and len(ds.files) == 12
    np.testing.assert_array_equal(ds.labels, np.repeat([0, 1, 2], N_PER_CLASS))
    assert ds.bands == EUROSAT_MS_BANDS and ds.band_names[1] == "blue" and ds.band_names[0] == "B01"
    assert ds.band_names[8:] == ("B09", "B10", "swir1", "swir2", "nir08")
    for i in (0, 5, 11):
        x, y = ds[i]
        assert x.shape == (13, 64, 64) and x.dtype == np.float32
        np.testing.assert_allclose(x, data[ds.files[i].stem] * 1e-4, rtol=1e-6)
        assert y == ds.labels[i] and ds.classes[y] == ds.files[i].parent.name
    # band selection, by id or canonical name, in the requested order
    sub = EuroSATDataset(root, variant="ms", bands=["nir", "B4", "B8A", "B10"])
    assert sub.bands == ("B08", "B04", "B8A", "B10") and sub.band_names == ("nir", "red", "nir08", "B10")
    x, _ = sub[2]
    raw = data[sub.files[2].stem]
    np.testing.assert_allclose(x, raw[[7, 3, 12, 9]] * 1e-4, rtol=1e-6)  # B8A is the 13th band in the files
    with pytest.raises(BandError, match="no band 'B13'"):
        EuroSATDataset(root, bands=["B13"])
    with pytest.raises(InputError, match="variant 'rgb' requested"):
        EuroSATDataset(root, variant="rgb")


def test_rgb_round_trip_and_single_folder_descent(rgb_root, tmp_path):
    root, data = rgb_root
    ds = EuroSATDataset(root, variant="rgb")
    assert ds.variant == "rgb" and ds.bands == ("red", "green", "blue")
    x, y = ds[6]
    assert x.shape == (3, 64, 64) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    ref = data[ds.files[6].stem].transpose(2, 0, 1) / 255.0
    assert np.abs(x - ref).mean() < 0.02  # JPEG is lossy
    assert y == 1
    sub = EuroSATDataset(root, bands=["blue"])
    np.testing.assert_allclose(sub[6][0][0], x[2])
    # an archive-style wrapper folder (EuroSAT.zip → 2750/) is descended
    wrapped = EuroSATDataset(root.parent)
    assert wrapped.root == root and len(wrapped) == 12
    with pytest.raises(BandError, match="no band 'nir'"):
        EuroSATDataset(root, bands=["nir"])


def test_load_all_and_split(ms_root):
    root, data = ms_root
    ds = EuroSATDataset(root, bands=["red", "nir"])
    X, y = ds.load_all()
    assert X.shape == (12, 2, 64, 64) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X[4], data[ds.files[4].stem][[3, 7]] * 1e-4, rtol=1e-6)
    Xs, ys = ds.load_all(max_per_class=2, seed=1)
    assert Xs.shape[0] == 6 and np.bincount(ys).tolist() == [2, 2, 2]
    Xs2, _ = ds.load_all(max_per_class=2, seed=1)
    np.testing.assert_array_equal(Xs, Xs2)
    tr, te = ds.split(train=0.75, seed=0)
    assert np.bincount(ds.labels[tr]).tolist() == [3, 3, 3] and np.bincount(ds.labels[te]).tolist() == [1, 1, 1]
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(12))
    tr2, te2 = ds.split(train=0.75, seed=0)
    np.testing.assert_array_equal(tr, tr2)
    Xt, yt = ds.load_all(indices=te)
    assert Xt.shape[0] == 3 and yt.tolist() == [0, 1, 2]
    with pytest.raises(ConfigError, match="train must be a fraction"):
        ds.split(train=1.0)
    # a larger stratified split is exact per class and deterministic
    labels = np.repeat(np.arange(5), [10, 20, 30, 1, 7])
    a, b = stratified_split(labels, train=0.8, seed=3)
    assert np.bincount(labels[a], minlength=5).tolist() == [8, 16, 24, 1, 6]
    assert np.array_equal(a, stratified_split(labels, train=0.8, seed=3)[0])
    assert not np.array_equal(a, stratified_split(labels, train=0.8, seed=4)[0])


def test_errors(tmp_path, ms_root):
    root, _ = ms_root
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty"):
        EuroSATDataset(empty)
    with pytest.raises(InputError, match="not found"):
        EuroSATDataset(tmp_path / "missing")
    with pytest.raises(ConfigError, match="variant"):
        EuroSATDataset(root, variant="sar")

    (root / "Clouds").mkdir()
    with pytest.raises(InputError, match="unknown class folder.*Clouds"):
        EuroSATDataset(root)
    (root / "Clouds").rmdir()

    notes = root / "Forest" / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt: not a EuroSAT image"):
        EuroSATDataset(root)
    notes.unlink()

    fake = root / "Forest" / "Forest_99.tif"
    fake.write_text("not a tiff")
    ds = EuroSATDataset(root)
    with pytest.raises(InputError, match=r"Forest_99\.tif: not a readable GeoTIFF"):
        ds[ds.files.index(fake)]
    fake.unlink()

    write_ms(root / "Forest" / "Forest_98.tif", np.zeros((3, 64, 64), np.uint16))
    ds = EuroSATDataset(root)
    with pytest.raises(InputError, match=r"Forest_98\.tif: 3 band\(s\); EuroSAT multispectral images have 13"):
        ds.load_all()
    (root / "Forest" / "Forest_98.tif").unlink()

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "Forest" / "Forest_97.jpg")
    with pytest.raises(InputError, match="mixes GeoTIFF"):
        EuroSATDataset(root)
    (root / "Forest" / "Forest_97.jpg").unlink()

    with pytest.raises(IndexError):
        EuroSATDataset(root)[12]


def test_rgb_errors(rgb_root):
    root, _ = rgb_root
    bad = root / "SeaLake" / "SeaLake_50.jpg"
    bad.write_bytes(b"\x00\x01 definitely not a jpeg")
    ds = EuroSATDataset(root)
    with pytest.raises(InputError, match=r"SeaLake_50\.jpg: not a readable JPEG"):
        ds[ds.files.index(bad)]
    Image.fromarray(np.zeros((64, 64), np.uint8), "L").save(bad)
    with pytest.raises(InputError, match=r"1 band\(s\)"):
        ds[ds.files.index(bad)]
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(bad)
    with pytest.raises(InputError, match="64x32 px; EuroSAT images are 64x64"):
        ds[ds.files.index(bad)]
    # an explicit class list fixes label ids even when folders are missing
    full = EuroSATDataset(root, classes=["AnnualCrop", "Forest", "Highway", "SeaLake"])
    assert full.classes[full.labels[-1]] == "SeaLake" and full.labels[-1] == 3
