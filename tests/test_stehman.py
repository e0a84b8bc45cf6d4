"""Stehman's (2014) estimator for strata that are not the map classes, ``pimc assess --strata``, and
the report's figure and HTML page."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pimc_core.errors import InputError
from pimc_core.maps.accuracy import error_matrix, stratified_estimate
from pimc_core.maps.stehman import stehman_estimate
from tests.test_assessment import pixel_centres, write_map
from tests.test_hostile_cli import refused, run

# Stehman 2014, section 4, table 2: 40 points, 10 in each of strata 1-4 (N_h = 40,000, 30,000, 20,000,
# 10,000 pixels), map and reference classes A-D (here 1-4). Transcribed from the paper as in the
# example of the R package mapaccuracy's stehman2014(), which quotes the pages of the figures below.
A, B, C, D = 1, 2, 3, 4
STRATUM = [1] * 10 + [2] * 10 + [3] * 10 + [4] * 10
MAP = [A] * 7 + [B] * 3 + [A] + [B] * 9 + [B] * 2 + [C] * 6 + [B] * 2 + [D] * 10
REF = ([A] * 5 + [C, B, A, B, C] + [A] + [B] * 5 + [A, A, B, B] + [C] * 5 + [D, D, B, B, A]
       + [D] * 7 + [C, C, B])
STRATUM_PIXELS = [40_000, 30_000, 20_000, 10_000]


def paper_example(**kw):
    return stehman_estimate(STRATUM, MAP, REF, [1, 2, 3, 4], STRATUM_PIXELS, [A, B, C, D], **kw)


def test_the_numerical_example_of_stehman_2014():
    e = paper_example()
    # published (three decimals): p. 4932 areas of A and C, overall accuracy; p. 4934 user's and producer's
    # accuracy of B; p. 4935 cell (B, C) of the error matrix, SE of the areas of A and C; p. 4936 SE of
    # overall accuracy, of user's and of producer's accuracy of B
    assert e.area_proportion[0] == pytest.approx(0.35, abs=5e-4)
    assert e.area_proportion[2] == pytest.approx(0.20, abs=5e-4)
    assert e.overall_accuracy == pytest.approx(0.63, abs=5e-4)
    assert e.users_accuracy[1] == pytest.approx(0.574, abs=5e-4)
    assert e.producers_accuracy[1] == pytest.approx(0.794, abs=5e-4)
    assert e.proportions[1, 2] == pytest.approx(0.08, abs=5e-4)
    assert e.area_proportion_se[0] == pytest.approx(0.082, abs=5e-4)
    assert e.area_proportion_se[2] == pytest.approx(0.064, abs=5e-4)
    assert e.overall_accuracy_se == pytest.approx(0.085, abs=5e-4)
    assert e.users_accuracy_se[1] == pytest.approx(0.125, abs=5e-4)
    assert e.producers_accuracy_se[1] == pytest.approx(0.116, abs=1e-3)
    # class A by hand from table 2 (eq. 27): map A & reference A: 5 of stratum 1, 1 of stratum 2;
    # map A: 7 and 1; reference A: 6, 3 and 1 (stratum 3)
    agree = 40_000 * 5 / 10 + 30_000 * 1 / 10
    assert e.users_accuracy[0] == pytest.approx(agree / (40_000 * 7 / 10 + 30_000 * 1 / 10))   # 0.742
    assert e.producers_accuracy[0] == pytest.approx(agree / (40_000 * 6 / 10 + 30_000 * 3 / 10 + 20_000 / 10))
    assert e.users_accuracy[0] == pytest.approx(0.742, abs=5e-4) and e.producers_accuracy[0] == pytest.approx(0.657, abs=5e-4)
    # the matrix adds up to the area proportions (eq. 16 vs 14); the counts are the sample's
    np.testing.assert_allclose(e.proportions.sum(axis=0), e.area_proportion)
    assert e.proportions.sum() == pytest.approx(1.0)
    assert e.counts.sum() == 40 and e.counts[0].tolist() == [6, 1, 1, 0]
    # the finite population correction changes the standard errors by less than 0.03 % here
    assert paper_example(fpc=False).overall_accuracy_se == pytest.approx(e.overall_accuracy_se, rel=3e-4)


def test_with_the_map_classes_as_strata_it_is_the_olofsson_estimator():
    rng = np.random.default_rng(4)
    mapped = rng.integers(1, 4, 300)
    reference = np.where(rng.random(300) < 0.75, mapped, rng.integers(1, 4, 300))
    pixels = [50_000, 3_000, 800]
    o = stratified_estimate(error_matrix(mapped, reference, [1, 2, 3]), pixels, [1, 2, 3])
    for fpc, rel in ((False, 1e-12), (True, 0.07)):  # with the correction: n_h / N_h up to 0.13
        s = stehman_estimate(mapped, mapped, reference, [1, 2, 3], pixels, [1, 2, 3], fpc=fpc)
        assert s.overall_accuracy == pytest.approx(o.overall_accuracy, rel=1e-12)
        for name in ("users_accuracy", "producers_accuracy", "area_proportion", "proportions"):
            np.testing.assert_allclose(getattr(s, name), getattr(o, name), rtol=1e-12)
        for name in ("overall_accuracy_se", "users_accuracy_se", "producers_accuracy_se", "area_proportion_se"):
            np.testing.assert_allclose(getattr(s, name), getattr(o, name), rtol=rel)
        np.testing.assert_array_equal(s.counts, o.counts)


def test_a_stratum_needs_two_points():
    with pytest.raises(InputError, match=r"strata \[4\] have fewer than 2"):
        stehman_estimate(STRATUM[:31], MAP[:31], REF[:31], [1, 2, 3, 4], STRATUM_PIXELS, [A, B, C, D])
    with pytest.raises(InputError, match=r"strata \[9\]"):
        stehman_estimate([9] + STRATUM[1:], MAP, REF, [1, 2, 3, 4], STRATUM_PIXELS, [A, B, C, D])


# ----------------------------------------------------------------------------- through the command line
@pytest.fixture()
def paper_rasters(tmp_path):
    """A 250 × 400 map (30 m pixels) and strata raster holding Stehman's example: strata 1-4 in row
    blocks of 40,000 / 30,000 / 20,000 / 10,000 pixels, the 40 points every 997th pixel of their
    stratum, where the map has the point's map class (class 4 elsewhere)."""
    from pimc_core.io.vector import write_points

    strata = np.repeat(np.arange(1, 5, dtype=np.uint8), STRATUM_PIXELS)
    mapped = np.full(strata.size, D, dtype=np.uint8)
    starts = np.concatenate([[0], np.cumsum(STRATUM_PIXELS)[:-1]])
    index = np.array([starts[s - 1] + 997 * (k % 10) + 13 for k, s in enumerate(STRATUM)])
    mapped[index] = MAP
    tif = write_map(tmp_path / "map.tif", mapped.reshape(250, 400))
    strata_tif = write_map(tmp_path / "strata.tif", strata.reshape(250, 400))
    gpkg = write_points(tmp_path / "points.gpkg", pixel_centres(tif, index), __import__("rasterio").crs.CRS.from_epsg(32631),
                        [("reference", "int", REF)])
    return tif, strata_tif, gpkg, index


def test_assess_with_strata_gives_the_paper_example(paper_rasters, tmp_path, capsys):
    tif, strata_tif, gpkg, _ = paper_rasters
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps([{"id": i, "name": n} for i, n in zip((A, B, C, D), "ABCD")]))
    out = tmp_path / "report" / "r.json"
    code, text, err = run(capsys, "assess", tif, "--reference", gpkg, "--strata", strata_tif, "--classes", classes,
                          "--out", out)
    assert code == 0, err
    report = json.loads(out.read_text())
    e = paper_example()
    assert "Stehman 2014" in report["estimator"]
    assert report["overall_accuracy"] == pytest.approx(0.63, abs=1e-6)
    assert report["overall_accuracy_ci95"] == pytest.approx(1.96 * e.overall_accuracy_se, abs=1e-6)
    total_ha = 100_000 * 0.09
    for k, c in enumerate(report["classes"]):
        assert c["name"] == "ABCD"[k]
        assert c["area_ha"] == pytest.approx(e.area_proportion[k] * total_ha, abs=0.01)
        assert c["area_ci95_ha"] == pytest.approx(1.96 * e.area_proportion_se[k] * total_ha, abs=0.01)
        assert c["users_accuracy"] == pytest.approx(e.users_accuracy[k], abs=1e-6)
        assert c["producers_accuracy_ci95"] == pytest.approx(1.96 * e.producers_accuracy_se[k], abs=1e-6)
    assert report["classes"][0]["area_ha"] == pytest.approx(0.35 * total_ha)
    assert report["strata"]["pixels"] == STRATUM_PIXELS and report["strata"]["n_samples"] == [10] * 4
    assert report["left_out"]["on_pixel_without_stratum"] == 0 and report["points_used"] == 40
    assert "overall accuracy 0.630" in text
    # the figure and the HTML page beside the JSON, linked from the Markdown
    md = (tmp_path / "report" / "r.md").read_text()
    assert "![error matrix" in md and "(r.png)" in md and "| stratum | pixels | sample points |" in md
    page = (tmp_path / "report" / "r.html").read_text()
    assert page.count("<table>") == 4 and "data:image/png;base64," in page and "<td>1 A</td>" in page
    from PIL import Image

    with Image.open(tmp_path / "report" / "r.png") as img:
        assert img.format == "PNG" and img.width > 2 * img.height * 0.9
        assert len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 50  # two coloured panels, not an empty canvas
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["r.html", "r.json", "r.md", "r.png"]


def test_assess_with_strata_reports_points_without_stratum(paper_rasters, tmp_path, capsys):
    tif, _, gpkg, index = paper_rasters
    strata = np.repeat(np.arange(1, 5, dtype=np.uint8), STRATUM_PIXELS)
    strata[:300] = 0            # 300 classified map pixels outside every stratum, the first point's among them,
    strata[index[1]] = 0        # and the second point's: 301
    assert index[0] < 300 < index[1]
    strata_tif = write_map(tmp_path / "strata0.tif", strata.reshape(250, 400))
    code, text, err = run(capsys, "assess", tif, "--reference", gpkg, "--strata", strata_tif, "--out", tmp_path / "r.json")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["left_out"]["on_pixel_without_stratum"] == 2 and report["points_used"] == 38
    assert report["strata"]["map_pixels_without_stratum"] == 301
    assert report["strata"]["pixels"] == [40_000 - 301, 30_000, 20_000, 10_000]
    assert "on pixel without stratum: 2" in text


def test_assess_refuses_strata_on_another_grid(paper_rasters, tmp_path, capsys):
    tif, _, gpkg, _ = paper_rasters
    other = write_map(tmp_path / "coarse.tif", np.ones((125, 200), np.uint8), res=60.0)
    line = refused(capsys, "assess", tif, "--reference", gpkg, "--strata", other, "--out", tmp_path / "r.json")
    assert "coarse.tif" in line and "another grid" in line and "200x125 px" in line and "\n" not in line.strip()
    assert not (tmp_path / "r.json").exists()
    line = refused(capsys, "assess", tif, "--reference", gpkg, "--strata", tmp_path / "none.tif", "--out", tmp_path / "r.json")
    assert "none.tif" in line


def test_the_95_percent_intervals_cover_with_strata_other_than_the_map_classes():
    """1000 stratified samples (550 points; 4 strata from an older map that agrees with the truth 70 % of
    the time, not the map classes) of a population of 200,000 pixels whose true class is known: the 95 %
    intervals of areas, overall, user's and producer's accuracies cover the true values in 93-96 % of
    them when written (areas 0.939 0.945 0.956; user's 0.939 0.947 0.929; producer's 0.933 0.935 0.937;
    overall 0.947)."""
    rng = np.random.default_rng(11)
    n_pop = 200_000
    truth = rng.choice([1, 2, 3], n_pop, p=[0.2, 0.3, 0.5])
    mapped = truth.copy()
    wrong = rng.random(n_pop) < np.select([truth == 1, truth == 2], [0.3, 0.15], 0.1)
    mapped[wrong] = rng.choice([1, 2, 3], wrong.sum())
    strata = np.minimum(np.where(rng.random(n_pop) < 0.7, truth, rng.choice([1, 2, 3], n_pop))
                        + (rng.random(n_pop) < 0.1) * 3, 4)
    ids, big_n = np.unique(strata, return_counts=True)
    true = [np.array([(truth == c).mean() for c in (1, 2, 3)]),
            np.array([(truth[mapped == c] == c).mean() for c in (1, 2, 3)]),
            np.array([(mapped[truth == c] == c).mean() for c in (1, 2, 3)]),
            np.array([(truth == mapped).mean()])]
    members = [np.flatnonzero(strata == s) for s in ids]
    covered = [np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(1)]
    reps = 1000
    for _ in range(reps):
        pick = np.concatenate([rng.choice(m, k, replace=False) for m, k in zip(members, [150, 150, 150, 100])])
        e = stehman_estimate(strata[pick], mapped[pick], truth[pick], ids, big_n, [1, 2, 3])
        for k, (est, se) in enumerate(((e.area_proportion, e.area_proportion_se), (e.users_accuracy, e.users_accuracy_se),
                                       (e.producers_accuracy, e.producers_accuracy_se),
                                       (np.array([e.overall_accuracy]), np.array([e.overall_accuracy_se])))):
            covered[k] += np.abs(est - true[k]) <= 1.96 * se
    for name, c in zip(("area", "user's", "producer's", "overall"), covered):
        assert ((c / reps >= 0.92) & (c / reps <= 0.97)).all(), (name, c / reps)


def test_points_of_a_stratum_without_pixels_weigh_nothing():
    """A point whose stratum has no pixels (possible only through the functions, not a map) adds
    nothing to the estimates: they are those of the sample without it, in both forms."""
    mapped, reference = [1, 1, 1, 1, 2, 2], [1, 1, 1, 2, 2, 1]
    s = stehman_estimate(mapped, mapped, reference, [1, 2], [10, 0], [1, 2], fpc=False)
    o = stratified_estimate(error_matrix(mapped, reference, [1, 2]), [10, 0], [1, 2])
    alone = stehman_estimate(mapped[:4], mapped[:4], reference[:4], [1, 2], [10, 0], [1, 2], fpc=False)
    for e in (s, o):
        assert e.overall_accuracy == pytest.approx(0.75) and e.overall_accuracy_se == pytest.approx(alone.overall_accuracy_se)
        np.testing.assert_allclose(e.area_proportion, [0.75, 0.25])
        assert e.users_accuracy[0] == pytest.approx(0.75) and np.isnan(e.users_accuracy[1])  # class 2 is not on the map
        assert e.counts.tolist() == [[3, 1], [1, 1]]
    assert np.isfinite(stehman_estimate(mapped, mapped, reference, [1, 2], [10, 0], [1, 2]).overall_accuracy_se)
