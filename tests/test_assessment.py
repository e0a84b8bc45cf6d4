"""Area and accuracy from a stratified sample: the Olofsson et al. 2014 estimator, ``pimc sample-design``
and ``pimc assess``."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from pimc_core.errors import InputError
from pimc_core.maps.accuracy import Z95, error_matrix, sample_size, stratified_estimate

#: Olofsson et al. 2014, section 5: deforestation, forest gain, stable forest, stable non-forest
OLOFSSON_PIXELS = [200_000, 150_000, 3_200_000, 6_450_000]
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
HA_30M = 0.09  # one 30 m pixel in hectares


def test_the_worked_example_of_olofsson_2014():
    e = stratified_estimate(OLOFSSON_COUNTS, OLOFSSON_PIXELS)
    area_total = sum(OLOFSSON_PIXELS) * HA_30M
    area = e.area_proportion * area_total
    ci = Z95 * e.area_proportion_se * area_total
    # published (their section 5 / table 9): areas ± 95 % half-widths in ha
    published_area = [21_158, 11_686, 285_770, 581_386]
    published_ci = [6_158, 3_756, 15_510, 16_282]
    np.testing.assert_allclose(area, published_area, rtol=5e-3)
    np.testing.assert_allclose(ci, published_ci, rtol=5e-3)
    assert round(area[0]) == 21_158 and round(ci[0]) == 6_158
    # accuracies as printed (two decimals)
    np.testing.assert_allclose(e.users_accuracy, [0.88, 0.73, 0.93, 0.96], atol=5e-3)
    np.testing.assert_allclose(Z95 * e.users_accuracy_se, [0.07, 0.10, 0.04, 0.02], atol=5e-3)
    np.testing.assert_allclose(e.producers_accuracy[[0, 2, 3]], [0.75, 0.93, 0.96], atol=5e-3)
    np.testing.assert_allclose(Z95 * e.producers_accuracy_se[[0, 2, 3]], [0.21, 0.03, 0.02], atol=6e-3)
    assert e.overall_accuracy == pytest.approx(0.95, abs=5e-3)
    assert Z95 * e.overall_accuracy_se == pytest.approx(0.02, abs=5e-3)
    assert e.proportions.sum() == pytest.approx(1.0)
    # eq. 13 with their expected user's accuracies and S(Ô) = 0.01: n ≈ 641
    assert sample_size(e.weights, [0.7, 0.6, 0.9, 0.95], 0.01) == 641


def test_a_small_example_by_hand():
    # two strata: 80 / 20 pixels; 4 and 3 points
    counts = np.array([[3, 1], [1, 2]])
    e = stratified_estimate(counts, [80, 20], classes=[1, 2])
    w1, w2 = 0.8, 0.2
    p = np.array([[w1 * 3 / 4, w1 * 1 / 4], [w2 * 1 / 3, w2 * 2 / 3]])
    np.testing.assert_allclose(e.proportions, p)
    assert e.overall_accuracy == pytest.approx(p[0, 0] + p[1, 1])
    u1, u2 = 3 / 4, 2 / 3
    np.testing.assert_allclose(e.users_accuracy, [u1, u2])
    np.testing.assert_allclose(e.users_accuracy_se, [np.sqrt(u1 * (1 - u1) / 3), np.sqrt(u2 * (1 - u2) / 2)])
    assert e.overall_accuracy_se == pytest.approx(np.sqrt(w1**2 * u1 * (1 - u1) / 3 + w2**2 * u2 * (1 - u2) / 2))
    np.testing.assert_allclose(e.area_proportion, p.sum(axis=0))
    se1 = np.sqrt(w1**2 * (3 / 4) * (1 / 4) / 3 + w2**2 * (1 / 3) * (2 / 3) / 2)
    assert e.area_proportion_se[0] == pytest.approx(se1)
    pa1 = p[0, 0] / p[:, 0].sum()
    assert e.producers_accuracy[0] == pytest.approx(pa1)
    n_hat1 = 80 * 3 / 4 + 20 * 1 / 3
    v = (80**2 * (1 - pa1) ** 2 * u1 * (1 - u1) / 3 + pa1**2 * 20**2 * (1 / 3) * (2 / 3) / 2) / n_hat1**2
    assert e.producers_accuracy_se[0] == pytest.approx(np.sqrt(v))


def test_error_matrix_counts_as_scikit_learn():
    rng = np.random.default_rng(0)
    m, r = rng.integers(1, 5, 300), rng.integers(1, 5, 300)
    np.testing.assert_array_equal(error_matrix(m, r, [1, 2, 3, 4]), confusion_matrix(m, r, labels=[1, 2, 3, 4]))
    with pytest.raises(InputError, match=r"\[7\]"):
        error_matrix([1, 7], [1, 1], [1, 2])


def test_a_mapped_class_needs_two_points():
    with pytest.raises(InputError, match=r"classes \[2\].*at least 2"):
        stratified_estimate(np.array([[3, 0], [0, 1]]), [10, 10], classes=[1, 2])
    # a class without mapped pixels (a reference class only) is fine
    e = stratified_estimate(np.array([[3, 1], [0, 0]]), [10, 0], classes=[1, 2])
    assert e.area_proportion[1] == pytest.approx(0.25)
    assert np.isnan(e.users_accuracy[1])


# ----------------------------------------------------------------------------- through the command line
def write_map(path, array, *, res=30.0, nodata=None, crs="EPSG:32631"):
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", height=array.shape[0], width=array.shape[1], count=1,
                       dtype=array.dtype, crs=crs, transform=from_origin(500_000, 4_000_000, res, res),
                       nodata=nodata, compress="deflate") as dst:
        dst.write(array, 1)
    return path


def pixel_centres(path, flat_index):
    import rasterio

    with rasterio.open(path) as src:
        rows, cols = np.divmod(np.asarray(flat_index), src.width)
        xs, ys = src.transform @ (cols + 0.5, rows + 0.5)
    return np.column_stack([xs, ys])


@pytest.fixture(scope="module")
def olofsson(tmp_path_factory):
    """The map of Olofsson et al.'s example (10 million 30 m pixels) and its 640 reference points."""
    from pimc_core.io.vector import write_points

    folder = tmp_path_factory.mktemp("olofsson")
    flat = np.repeat(np.arange(1, 5, dtype=np.uint8), OLOFSSON_PIXELS)
    tif = write_map(folder / "map.tif", flat.reshape(2500, 4000))
    starts = np.concatenate([[0], np.cumsum(OLOFSSON_PIXELS)[:-1]])
    index, reference = [], []
    for i in range(4):
        refs = np.repeat(np.arange(1, 5), OLOFSSON_COUNTS[i])
        index.extend(starts[i] + 7 * np.arange(len(refs)))
        reference.extend(refs.tolist())
    xy = pixel_centres(tif, index)
    gpkg = write_points(folder / "reference.gpkg", xy, __import__("rasterio").crs.CRS.from_epsg(32631),
                        [("reference", "int", reference)])
    return tif, gpkg, xy, reference


def test_assess_gives_the_published_example(olofsson, tmp_path, capsys):
    import json

    from tests.test_hostile_cli import run

    tif, gpkg, _, _ = olofsson
    code, out, err = run(capsys, "assess", tif, "--reference", gpkg, "--class-field", "reference",
                         "--out", tmp_path / "report.json")
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert (tmp_path / "report.md").exists() and "Error matrix" in (tmp_path / "report.md").read_text()
    defo = report["classes"][0]
    assert round(defo["area_ha"]) == 21_158 and round(defo["area_ci95_ha"]) == 6_158
    assert defo["map_area_ha"] == pytest.approx(18_000)
    e = stratified_estimate(OLOFSSON_COUNTS, OLOFSSON_PIXELS)
    for k, c in enumerate(report["classes"]):
        assert c["n_samples"] == OLOFSSON_COUNTS[k].sum()
        assert c["users_accuracy"] == pytest.approx(e.users_accuracy[k], abs=1e-6)
        assert c["producers_accuracy_ci95"] == pytest.approx(Z95 * e.producers_accuracy_se[k], abs=1e-6)
        assert c["area_ha"] == pytest.approx(e.area_proportion[k] * 900_000, rel=1e-6)
    assert report["overall_accuracy"] == pytest.approx(e.overall_accuracy, rel=1e-6)
    assert report["error_matrix_counts"] == OLOFSSON_COUNTS.tolist()
    assert report["points_used"] == 640 and not any(report["left_out"].values())
    assert "overall accuracy 0.947 ± 0.018" in out and "21,158 ± 6,158 ha" in out


def test_assess_reports_points_it_leaves_out(olofsson, tmp_path, capsys):
    import json

    from pimc_core.io.vector import write_points
    from tests.test_hostile_cli import run

    tif, _, xy, reference = olofsson
    extra = np.array([[0.0, 0.0], [500_015.0, 4_000_000.0 - 2500 * 30 + 15], xy[0]])  # outside, inside, inside
    nodata_map = np.repeat(np.arange(1, 5, dtype=np.uint8), OLOFSSON_PIXELS).reshape(2500, 4000)
    nodata_map[-1, 0] = 0  # the second extra point falls on a pixel without class
    tif2 = write_map(tmp_path / "map.tif", nodata_map)
    gpkg = write_points(tmp_path / "ref.gpkg", np.vstack([xy, extra]), __import__("rasterio").crs.CRS.from_epsg(32631),
                        [("reference", "int", reference + [1, 1, 9]), ("other", "int", [None] * (len(xy) + 3))])
    code, out, err = run(capsys, "assess", tif2, "--reference", gpkg, "--out", tmp_path / "r.json")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["left_out"] == {"no_reference_class": 0, "outside_map": 1, "on_pixel_without_class": 1,
                                  "reference_class_not_in_map": 1}
    assert report["points_used"] == 640
    assert "outside map: 1" in out


def test_assess_refuses_polygons_and_bad_fields(tmp_path, capsys):
    from tests.test_hostile_cli import refused

    tif = write_map(tmp_path / "map.tif", np.ones((20, 20), np.uint8))
    geojson = tmp_path / "fields.geojson"
    geojson.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"reference": 1},'
                       ' "geometry": {"type": "Polygon", "coordinates": [[[500000, 3999700], [500100, 3999700],'
                       ' [500100, 3999800], [500000, 3999700]]]}}]}')
    line = refused(capsys, "assess", tif, "--reference", geojson, "--out", tmp_path / "r.json")
    assert "Polygon" in line and "not independent" in line and "pimc sample-design" in line
    line = refused(capsys, "assess", tif, "--reference", geojson, "--class-field", "klass", "--out", tmp_path / "r.json")
    assert "klass" in line
    assert "report is JSON" in refused(capsys, "assess", tif, "--reference", geojson, "--out", tmp_path / "r.txt")
    assert not (tmp_path / "r.json").exists()


# ----------------------------------------------------------------------------- sample design
def test_allocation_rules():
    from pimc_core.errors import ConfigError
    from pimc_core.maps.sample_design import allocate

    px = np.array(OLOFSSON_PIXELS)
    assert allocate(1000, px, "proportional").tolist() == [20, 15, 320, 645]
    assert allocate(1000, px, "equal").tolist() == [250] * 4
    assert allocate(1000, px, "min:100").tolist() == [100, 100, 265, 535]
    assert allocate(10, np.array([2, 100, 100]), "equal").tolist() == [2, 4, 4]  # a class smaller than n/q
    assert allocate(7, np.array([1, 1, 100]), "min:3").tolist() == [1, 1, 5]
    with pytest.raises(ConfigError, match="min:50"):
        allocate(100, px, "min:50")
    with pytest.raises(ConfigError, match="'neyman'"):
        allocate(100, px, "neyman")
    with pytest.raises(ConfigError, match="only 202"):
        allocate(1000, np.array([2, 200]), "equal")


def test_sample_design_then_assess(tmp_path, capsys):
    import json

    import rasterio
    from osgeo import ogr

    from tests.test_hostile_cli import refused, run

    rng = np.random.default_rng(1)
    classes = rng.choice(np.array([1, 2, 3], np.uint8), size=(300, 200), p=[0.6, 0.3, 0.1])
    classes[:10] = 255  # nodata
    classes[10:12] = 0
    tif = write_map(tmp_path / "map.tif", classes, nodata=255, res=10.0)
    pts = tmp_path / "new" / "pts.gpkg"
    code, out, err = run(capsys, "sample-design", tif, "--n", 120, "--allocation", "min:30", "--seed", 3, "--out", pts)
    assert code == 0, err
    ds = ogr.Open(str(pts), 1)
    lyr = ds.GetLayer(0)
    seen, strata = set(), []
    with rasterio.open(tif) as src:
        for f in lyr:
            x, y = f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY()
            col, row = (int(v) for v in ~src.transform @ (x, y))
            assert (src.transform @ (col + 0.5, row + 0.5)) == pytest.approx((x, y))  # pixel centre
            assert classes[row, col] == f.GetField("stratum") and f.IsFieldNull("reference")
            seen.add((row, col))
            strata.append(f.GetField("stratum"))
            f.SetField("reference", int(classes[row, col]) if len(seen) % 10 else 1 + int(classes[row, col]) % 3)
            lyr.SetFeature(f)
    ds = None
    assert len(seen) == 120 and np.bincount(strata).tolist()[1:] == [60, 30, 30]
    # the same seed draws the same points
    run(capsys, "sample-design", tif, "--n", 120, "--allocation", "min:30", "--seed", 3, "--out", tmp_path / "b.gpkg")
    code, out, err = run(capsys, "assess", tif, "--reference", pts, "--out", tmp_path / "r.json")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["points_used"] == 120 and 0.8 < report["overall_accuracy"] < 1
    assert sum(c["map_area_ha"] for c in report["classes"]) == pytest.approx((300 - 12) * 200 * 0.01)
    assert "--n" in refused(capsys, "sample-design", tif, "--out", tmp_path / "c.gpkg")
    assert ".gpkg" in refused(capsys, "sample-design", tif, "--n", 5, "--out", tmp_path / "c.shp")
    code, out, err = run(capsys, "sample-design", tif, "--target-se", 0.01, "--expected-ua", "0.7,0.6,0.9",
                         "--out", tmp_path / "d.gpkg")
    assert code == 0 and " points " in out


def test_the_95_percent_intervals_cover_the_true_areas(tmp_path):
    """500 stratified samples of a generated map whose true class of every pixel is known: each class's
    95 % area interval covers its true area in 93–97 % of them (0.948, 0.944, 0.950 when written)."""
    from pimc_core.maps.accuracy import error_matrix
    from pimc_core.maps.class_map import open_class_map
    from pimc_core.maps.sample_design import allocate, draw_sample

    rng = np.random.default_rng(7)
    truth = rng.choice(np.array([1, 2, 3], np.uint8), size=(400, 500), p=[0.15, 0.25, 0.6])
    mapped = truth.copy()
    wrong = rng.random(truth.shape) < np.select([truth == 1, truth == 2], [0.3, 0.15], 0.08)
    mapped[wrong] = rng.choice(np.array([1, 2, 3], np.uint8), size=int(wrong.sum()))
    cmap = open_class_map(write_map(tmp_path / "map.tif", mapped))
    true_share = np.array([(truth == c).mean() for c in (1, 2, 3)])
    sizes = allocate(300, cmap.pixels, "min:60")
    covered = np.zeros(3)
    for seed in range(500):
        xy, stratum = draw_sample(cmap, sizes, seed=seed)
        col, row = (np.floor(v).astype(int) for v in ~cmap.transform @ (xy[:, 0], xy[:, 1]))
        e = stratified_estimate(error_matrix(stratum, truth[row, col], cmap.classes), cmap.pixels, cmap.classes)
        covered += np.abs(e.area_proportion - true_share) <= Z95 * e.area_proportion_se
    coverage = covered / 500
    assert ((coverage >= 0.93) & (coverage <= 0.97)).all(), coverage
