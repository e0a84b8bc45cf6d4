"""Where to label next: the uncertainty map, ``pimc suggest`` and feeding its points back to ``pimc fit``
(several label files merged, point labels, empty classes)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from osgeo import ogr

from pimc_core.cli import main
from pimc_core.errors import ConfigError, InputError
from pimc_core.io.labels import read_label_files
from pimc_core.io.timeseries import open_series
from pimc_core.io.vector import write_points
from pimc_core.maps.jobs import normalised_entropy
from pimc_core.maps.suggest import class_quotas, suggest_samples
from pimc_core.models.centroid import NearestCentroidModel
from tests.test_hostile_cli import FAST_FIT, one_line, refused, run

CENTROID = "builtin:nearest-centroid"


def read_points(path):
    ds = ogr.Open(str(path))
    lyr = ds.GetLayer(0)
    rows = []
    for f in lyr:
        g = f.GetGeometryRef()
        rows.append({"x": g.GetX(), "y": g.GetY(), **{k: f.GetField(k) for k in
                                                       ("predicted", "predicted_name", "uncertainty", "class")},
                     "class_null": f.IsFieldNull("class")})
    crs = lyr.GetSpatialRef().GetAuthorityCode(None)
    return rows, crs


def fill_classes(path, truth, transform):
    """Give every point the class of ``truth`` at its pixel (what an analyst would do)."""
    ds = ogr.Open(str(path), 1)
    lyr = ds.GetLayer(0)
    for f in lyr:
        g = f.GetGeometryRef()
        col, row = (int(v) for v in ~transform @ (g.GetX(), g.GetY()))
        f.SetField("class", int(truth[row, col]))
        lyr.SetFeature(f)
    ds = None


# ----------------------------------------------------------------------------- uncertainty
def test_normalised_entropy():
    p = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(normalised_entropy(p), [0.0, 1.0, np.log(2) / np.log(3)], atol=1e-6)
    assert normalised_entropy(np.ones((4, 1))).tolist() == [0.0] * 4
    assert normalised_entropy(p).dtype == np.float32


def test_classify_writes_the_uncertainty_of_its_probabilities(tiny_sample, tmp_path, capsys):
    code, out, err = run(capsys, "classify", tiny_sample.manifest, "--model", CENTROID, "--out", tmp_path,
                         "--probabilities", "--quiet", "--block", "16")
    assert code == 0, err
    with rasterio.open(tmp_path / "uncertainty.tif") as ds:
        assert ds.count == 1 and ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
        assert ds.tags()["pimc_product"] == "uncertainty"
        unc = ds.read(1)
    with rasterio.open(tmp_path / "probabilities.tif") as ds:
        prob = ds.read()
    ok = np.isfinite(unc)
    flat = prob[:, ok].T
    np.testing.assert_allclose(unc[ok], normalised_entropy(flat), atol=1e-6)
    assert 'type="singlebandpseudocolor"' in (tmp_path / "uncertainty.qml").read_text()


# ----------------------------------------------------------------------------- suggest
def test_class_quotas():
    q = class_quotas(np.array([900, 100, 0, 4]), 10, np.array([50, 50, 0, 1]))
    assert q.sum() == 10 and q[2] == 0 and q[3] == 1 and q[0] > q[1] >= 1
    assert class_quotas(np.array([9, 1, 5]), 2, np.array([5, 5, 5])).tolist() == [1, 0, 1]  # largest first
    assert class_quotas(np.array([100, 100]), 10, np.array([2, 50])).tolist() == [2, 8]  # capped, passed on


def test_suggest_writes_spread_uncertain_points(tiny_sample, tmp_path, capsys):
    out = tmp_path / "new" / "points.gpkg"
    code, stdout, err = run(capsys, "suggest", tiny_sample.manifest, "--model", CENTROID, "--n", 12, "--out", out,
                            "--quiet", "--block", "8", "--strategy", "uncertainty")
    assert code == 0, err
    assert stdout.count("\n") == 1 and "12 points" in stdout and "of the map" in stdout
    assert sorted(os.listdir(out.parent)) == ["points.gpkg"]
    pts, epsg = read_points(out)
    assert len(pts) == 12 and epsg == "32631"
    assert all(p["class_null"] and p["class"] is None for p in pts)
    # pixel centres, one per pixel, their predicted class and uncertainty as the class map says
    assert main(["classify", str(tiny_sample.manifest), "--model", CENTROID, "--out", str(tmp_path / "map"),
                 "--quiet"]) == 0
    with rasterio.open(tmp_path / "map" / "uncertainty.tif") as ds:
        unc, tr = ds.read(1), ds.transform
    with rasterio.open(tmp_path / "map" / "classes.tif") as ds:
        cls = ds.read(1)
    rc = set()
    for p in pts:
        col, row = ~tr @ (float(p["x"]), float(p["y"]))
        assert col % 1 == pytest.approx(0.5) and row % 1 == pytest.approx(0.5)
        r, c = int(row), int(col)
        rc.add((r, c))
        assert p["predicted"] == cls[r, c]
        assert p["uncertainty"] == pytest.approx(float(unc[r, c]), abs=1e-5)
    assert len(rc) == 12
    assert len({p["predicted"] for p in pts}) >= 5  # spread over the predicted classes
    med = float(np.nanmedian(unc))
    assert np.mean([p["uncertainty"] > med for p in pts]) >= 0.75
    d = min(np.hypot(a[0] - b[0], a[1] - b[1]) for i, a in enumerate(rc) for b in list(rc)[i + 1:])
    assert d >= 2  # spread: no two points side by side

    # the same points whatever the block, another set with another seed only where ties
    again = tmp_path / "again.gpkg"
    assert main(["suggest", str(tiny_sample.manifest), "--model", CENTROID, "--n", "12", "--out", str(again),
                 "--quiet", "--strategy", "uncertainty"]) == 0
    assert read_points(again)[0] == pts


def test_suggest_library_result_and_refusals(tiny_sample, tmp_path):
    ts = open_series(tiny_sample.manifest)
    res = suggest_samples(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "p.gpkg", 30, seed=3, block=16)
    assert res.rows.size == 30 and res.predicted_pixels == 576 and 0 < res.median_uncertainty < 1
    assert len(set(zip(res.rows.tolist(), res.cols.tolist()))) == 30
    # every pixel: exactly one point per pixel, no spacing left
    res = suggest_samples(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "all.gpkg", 576)
    assert len(set(zip(res.rows.tolist(), res.cols.tolist()))) == 576
    with pytest.raises(InputError, match="577 points asked but the region has 576 pixels"):
        suggest_samples(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "x.gpkg", 577)
    label_free = NearestCentroidModel.for_synthetic()
    label_free.outputs = ("embeddings", "forecast")
    with pytest.raises(ConfigError, match="cannot give suggestions"):
        suggest_samples(ts, label_free, None, tmp_path / "x.gpkg", 5)
    with pytest.raises(ConfigError, match=r"suggest.n must be an int in the range \[1, inf\); got 0"):
        suggest_samples(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "x.gpkg", 0)
    assert not (tmp_path / "x.gpkg").exists()


def test_suggest_n_below_one_is_a_usage_error(capsys, tiny_sample, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["suggest", str(tiny_sample.manifest), "--model", CENTROID, "--n", "0", "--out", str(tmp_path / "p.gpkg")])
    assert e.value.code == 2
    assert "--n must be a positive integer (got '0')" in one_line(capsys.readouterr().err, "pimc suggest")


@pytest.mark.parametrize("extra, says", [
    (["--n", "100000"], "100000 points asked but the region has 576 pixels"),
    (["--n", "5", "--seed", "-1"], "suggest.seed must be an int in the range [0, 4294967295]; got -1"),
])
def test_suggest_refusals_are_one_line(capsys, tiny_sample, tmp_path, extra, says):
    out = tmp_path / "sub" / "p.gpkg"
    line = refused(capsys, "suggest", tiny_sample.manifest, "--model", CENTROID, "--out", out, "--quiet", *extra)
    assert says in line
    assert not (tmp_path / "sub").exists()


def test_suggest_out_refusals(capsys, tiny_sample, tmp_path):
    folder = tmp_path / "p.gpkg"
    folder.mkdir()
    assert "is a folder" in refused(capsys, "suggest", tiny_sample.manifest, "--model", CENTROID, "--n", 3, "--out",
                                    folder, "--quiet")
    assert "give a .gpkg file name" in refused(capsys, "suggest", tiny_sample.manifest, "--model", CENTROID, "--n", 3,
                                               "--out", tmp_path / "p.shp", "--quiet")
    assert os.listdir(tmp_path) == ["p.gpkg"]


# ----------------------------------------------------------------------------- suggest --labels
def _sparse(sample):
    with rasterio.open(sample.outdir / "labels_sparse.tif") as ds:
        return ds.read(1)


def test_suggest_never_on_labelled_pixels(tiny_sample, tmp_path):
    ts = open_series(tiny_sample.manifest)
    sp = _sparse(tiny_sample)
    model = NearestCentroidModel.for_synthetic()
    before = suggest_samples(ts, model, None, tmp_path / "a.gpkg", 30, block=16)
    assert before.excluded is None and "excluded" not in before.summary()
    assert (sp[before.rows, before.cols] > 0).any()  # without the mask, some fall on labelled pixels
    res = suggest_samples(ts, model, None, tmp_path / "b.gpkg", 30, block=16, exclude=sp > 0)
    assert res.rows.size == 30 and not (sp[res.rows, res.cols] > 0).any()
    assert res.excluded == int((sp > 0).sum()) and f"; {res.excluded} labelled pixels excluded; " in res.summary()
    # an empty mask: the same points as no mask
    none = suggest_samples(ts, model, None, tmp_path / "c.gpkg", 30, block=16, exclude=np.zeros(sp.shape, bool))
    assert none.excluded == 0
    assert none.rows.tolist() == before.rows.tolist() and none.cols.tolist() == before.cols.tolist()
    # every pixel not labelled, one each; one more is refused
    free = int((sp == 0).sum())
    every = suggest_samples(ts, model, None, tmp_path / "d.gpkg", free, exclude=sp > 0)
    assert len(set(zip(every.rows.tolist(), every.cols.tolist()))) == free and not (sp[every.rows, every.cols] > 0).any()
    with pytest.raises(InputError, match=f"{free + 1} points asked but only {free} of the 576 pixels of the region "
                       "with a prediction are not labelled yet"):
        suggest_samples(ts, model, None, tmp_path / "x.gpkg", free + 1, exclude=sp > 0)
    with pytest.raises(ConfigError, match="the exclude mask is 3x24 but the stack is 24x24 pixels"):
        suggest_samples(ts, model, None, tmp_path / "x.gpkg", 3, exclude=sp[:3] > 0)
    assert not (tmp_path / "x.gpkg").exists()


def test_suggest_labels_flag_merges_files_like_fit(tiny_sample, tmp_path, capsys):
    ts = open_series(tiny_sample.manifest)
    tr = ts.grid.transform
    sp = _sparse(tiny_sample)
    sparse = tiny_sample.outdir / "labels_sparse.tif"
    # the points of a first round: two given a class, one left empty (not excluded, a warning)
    first = np.argwhere(sp == 0)[:3]
    pts = write_points(tmp_path / "round1.gpkg", np.array([tr @ (c + 0.5, r + 0.5) for r, c in first]), ts.grid.crs,
                       [("class", "int", [1, 2, None])])
    out = tmp_path / "round2.gpkg"
    code, stdout, err = run(capsys, "suggest", tiny_sample.manifest, "--model", CENTROID, "--n", 100, "--out", out,
                            "--labels", sparse, "--labels", pts, "--class-field", "class", "--quiet")
    assert code == 0, err
    assert err.strip() == f"warning: {pts}: 1 of 3 features have no 'class' value; they are left unlabelled"
    n_labelled = int((sp > 0).sum()) + 2
    assert stdout.count("\n") == 1 and "100 points" in stdout and f"; {n_labelled} labelled pixels excluded; " in stdout
    labelled = sp > 0
    labelled[tuple(first[0])] = labelled[tuple(first[1])] = True
    got = [tuple(int(v) for v in (~tr @ (p["x"], p["y"])))[::-1] for p in read_points(out)[0]]
    assert len(got) == 100 and not any(labelled[r, c] for r, c in got)
    # without --labels: the summary as before
    code, stdout, _ = run(capsys, "suggest", tiny_sample.manifest, "--model", CENTROID, "--n", 5, "--out",
                          tmp_path / "plain.gpkg", "--quiet")
    assert code == 0 and "excluded" not in stdout


def test_suggest_labels_refusals_are_one_line(tiny_sample, tmp_path, capsys):
    sparse = tiny_sample.outdir / "labels_sparse.tif"
    base = ("suggest", tiny_sample.manifest, "--model", CENTROID, "--n", 5, "--quiet")
    assert "--class-field describes labels: give --labels too" in refused(
        capsys, *base, "--out", tmp_path / "a" / "p.gpkg", "--class-field", "class")
    assert "missing.tif" in refused(capsys, *base, "--out", tmp_path / "b" / "p.gpkg", "--labels",
                                    tmp_path / "missing.tif")
    other = tmp_path / "other.tif"
    with rasterio.open(sparse) as src:
        prof = dict(src.profile, width=12)
        data = src.read(1)[:, :12]
    with rasterio.open(other, "w", **prof) as dst:
        dst.write(data, 1)
    assert str(other) in refused(capsys, *base, "--out", tmp_path / "c" / "p.gpkg", "--labels", other)
    # the points of the last round given as --out again: refused, the file untouched
    ts = open_series(tiny_sample.manifest)
    pts = write_points(tmp_path / "round1.gpkg", np.array([ts.grid.transform @ (0.5, 0.5)]), ts.grid.crs,
                       [("class", "int", [1])])
    before = pts.read_bytes()
    assert "is an input of this run" in refused(capsys, *base, "--out", pts, "--labels", pts, "--class-field", "class")
    assert pts.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["other.tif", "round1.gpkg"]


# ----------------------------------------------------------------------------- labels back to fit
def test_label_files_merge_and_name_a_disagreeing_pixel(tiny_sample, tmp_path):
    ts = open_series(tiny_sample.manifest)
    tr = ts.grid.transform
    sparse = tiny_sample.outdir / "labels_sparse.tif"
    with rasterio.open(sparse) as ds:
        sp = ds.read(1)
    free = np.argwhere(sp == 0)[:3]
    xy = [tr @ (c + 0.5, r + 0.5) for r, c in free]
    pts = write_points(tmp_path / "p.gpkg", np.array(xy), ts.grid.crs,
                       [("class", "int", [1, 2, None]), ("predicted", "int", [1, 1, 1])])
    lm = read_label_files([sparse, pts], ts.grid, class_field="class")
    assert lm.array[tuple(free[0])] == 1 and lm.array[tuple(free[1])] == 2 and lm.array[tuple(free[2])] == 0
    assert (lm.array[sp > 0] == sp[sp > 0]).all()
    assert lm.warnings == [f"{pts}: 1 of 3 features have no 'class' value; they are left unlabelled"]

    r, c = (int(v) for v in np.argwhere(sp > 0)[0])
    other = 1 if sp[r, c] != 1 else 2
    bad = write_points(tmp_path / "bad.gpkg", np.array([tr @ (c + 0.5, r + 0.5)]), ts.grid.crs,
                       [("class", "int", [other])])
    with pytest.raises(ConfigError) as e:
        read_label_files([sparse, bad], ts.grid, class_field="class")
    x, y = tr @ (c + 0.5, r + 0.5)
    msg = str(e.value)
    assert f"row {r}, col {c}" in msg and f"x {x:.6g}, y {y:.6g}" in msg and str(sparse) in msg and str(bad) in msg
    assert f"class {sp[r, c]}" in msg and f"class {other}" in msg

    empty = write_points(tmp_path / "empty.gpkg", np.array(xy), ts.grid.crs, [("class", "int", [None] * 3)])
    with pytest.raises(InputError, match="'class' of every feature \\(3\\) is empty; fill in the classes first"):
        read_label_files([sparse, empty], ts.grid, class_field="class")


def test_suggested_points_filled_in_go_back_to_fit(tiny_sample, tmp_path, capsys):
    pts = tmp_path / "points.gpkg"
    assert main(["suggest", str(tiny_sample.manifest), "--model", CENTROID, "--n", "30", "--out", str(pts),
                 "--quiet"]) == 0
    with rasterio.open(tiny_sample.outdir / "labels.tif") as ds:
        truth, tr = ds.read(1), ds.transform
    sparse = tiny_sample.outdir / "labels_sparse.tif"

    # not filled in yet: one line
    line = refused(capsys, "fit", tiny_sample.manifest, "--labels", sparse, "--labels", pts, "--class-field", "class",
                   "--out", tmp_path / "m0.pimc", *FAST_FIT)
    assert "'class' of every feature (30) is empty" in line
    assert not (tmp_path / "m0.pimc").exists()

    fill_classes(pts, truth, tr)
    code, out, err = run(capsys, "fit", tiny_sample.manifest, "--labels", sparse, "--labels", pts,
                         "--class-field", "class", "--out", tmp_path / "m.pimc", *FAST_FIT)
    assert code == 0, err
    with rasterio.open(sparse) as ds:
        n_sparse = int((ds.read(1) > 0).sum())
    assert f"{n_sparse + 30 - n_overlap(sparse, pts, tr)} labelled" in out and (tmp_path / "m.pimc").is_file()
    assert err == ""  # no warning: every point has its class


def n_overlap(sparse, pts, tr) -> int:
    """Suggested points on pixels the sparse labels already hold."""
    with rasterio.open(sparse) as ds:
        sp = ds.read(1)
    rows, _ = read_points(pts)
    return sum(int(sp[int((~tr @ (p["x"], p["y"]))[1]), int((~tr @ (p["x"], p["y"]))[0])] > 0) for p in rows)


def test_fit_on_scattered_points_alone_with_input_selection(tiny_sample, tmp_path, capsys):
    """Points are one-pixel regions: the sampler and the held-out regions of the input choice cope."""
    with rasterio.open(tiny_sample.outdir / "labels.tif") as ds:
        truth, tr, crs = ds.read(1), ds.transform, ds.crs
    rng = np.random.default_rng(0)
    cells = np.argwhere(truth > 0)
    pick = cells[rng.choice(len(cells), 40, replace=False)]
    xy = np.array([tr @ (c + 0.5, r + 0.5) for r, c in pick])
    classes = [int(truth[r, c]) for r, c in pick] + [None, None]
    xy = np.vstack([xy, xy[:2] + 1000.0])
    pts = write_points(tmp_path / "pts.gpkg", xy, crs, [("class", "int", classes)])
    fast = ["--set", "pretrain.steps=1", "--set", "finetune.max_steps=2", "--set", "data.pretrain_samples=64",
            "--set", "forecast.enabled=false", "--set", "classifier_inputs=auto", "--quiet"]
    code, out, err = run(capsys, "fit", tiny_sample.manifest, "--labels", pts, "--class-field", "class",
                         "--out", tmp_path / "m.pimc", *fast)
    assert code == 0, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines == [f"warning: {pts}: 2 of 42 features have no 'class' value; they are left unlabelled"]
    assert "40 labelled" in out


def test_coverage_pick_goes_to_the_kinds_nobody_labelled():
    """Weighted k-means: one point per unlabelled kind of pixel, a confident one included,
    none among the labelled kinds; novelty is the cosine distance to the nearest labelled pixel."""
    from pimc_core.maps.coverage import coverage_pick, novelty

    rng = np.random.default_rng(0)
    centres = np.eye(6, 16, dtype=np.float32)  # six kinds of pixel, orthogonal directions
    kind = np.repeat(np.arange(6), 50)
    emb = centres[kind] + 0.02 * rng.standard_normal((300, 16)).astype(np.float32)
    unc = np.where(kind == 5, 0.02, 0.5)  # kind 5: mapped confidently (e.g. a whole field wrong)
    labelled = centres[:3] * 3.0  # kinds 0-2 labelled (scale does not matter: cosine)
    nov = novelty(emb, labelled)
    assert nov.shape == (300,) and np.all(nov[kind < 3] < 0.01) and np.all(nov[kind >= 3] > 0.9)
    assert np.array_equal(novelty(emb, None), np.ones(300, np.float32))
    idx, nov2 = coverage_pick(emb, unc, labelled, 3, seed=1)
    assert np.array_equal(nov2, nov) and len(set(idx.tolist())) == 3
    assert sorted(kind[idx].tolist()) == [3, 4, 5]  # the confident, unlabelled kind 5 gets its point
    # uncertainty alone would not have looked there: kind 5 is the least uncertain
    assert set(np.argsort(-unc, kind="stable")[:150].tolist()).isdisjoint(np.flatnonzero(kind == 5))
    # nothing labelled: the points spread over all six kinds; n = all candidates: every one
    assert sorted(kind[coverage_pick(emb, unc, None, 6, seed=1)[0]].tolist()) == [0, 1, 2, 3, 4, 5]
    assert sorted(coverage_pick(emb[:5], unc[:5], None, 5)[0].tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="n must be in 1..5"):
        coverage_pick(emb[:5], unc[:5], None, 6)


def test_suggest_by_coverage(tiny_sample, tmp_path, capsys):
    """``pimc suggest --strategy coverage``: N distinct pixels, never labelled ones, the summary
    says how they were chosen, the same points again for the same seed; a bad strategy is refused."""
    ts = open_series(tiny_sample.manifest)
    sp = _sparse(tiny_sample)
    model = NearestCentroidModel.for_synthetic()
    res = suggest_samples(ts, model, None, tmp_path / "a.gpkg", 20, block=16, exclude=sp > 0)  # the default
    assert res.strategy == "coverage" and not res.fallback and res.rows.size == 20
    assert len(set(zip(res.rows.tolist(), res.cols.tolist()))) == 20 and not (sp[res.rows, res.cols] > 0).any()
    assert res.novelty is not None and res.novelty.shape == (20,) and np.all(res.novelty >= 0)
    assert "by coverage, median novelty" in res.summary()
    # the labelled pixels' embeddings are what novelty is measured against: without them, all ones
    free = suggest_samples(ts, model, None, tmp_path / "b.gpkg", 20, block=16, strategy="coverage")
    assert np.all(free.novelty == 1.0)
    code, stdout, err = run(capsys, "suggest", tiny_sample.manifest, "--model", CENTROID, "--n", 20, "--out",
                            tmp_path / "c.gpkg", "--labels", tiny_sample.outdir / "labels_sparse.tif",
                            "--strategy", "coverage", "--quiet", "--block", "16")
    assert code == 0, err
    assert "20 points" in stdout and "by coverage" in stdout
    pts, _ = read_points(tmp_path / "c.gpkg")
    tr = ts.grid.transform
    cli = sorted((int((~tr @ (p["x"], p["y"]))[1]), int((~tr @ (p["x"], p["y"]))[0])) for p in pts)
    assert cli == sorted(zip(res.rows.tolist(), res.cols.tolist()))
    # a model without embeddings: by uncertainty, and the summary says why
    from unittest import mock

    with mock.patch.object(NearestCentroidModel, "outputs", ("classes", "confidence", "probabilities")):
        plain = suggest_samples(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "e.gpkg", 20, block=16,
                                exclude=sp > 0)
    assert plain.strategy == "uncertainty" and plain.fallback and plain.novelty is None
    assert "by uncertainty, spacing" in plain.summary() and "the model gives no embeddings for coverage" in plain.summary()
    ref = suggest_samples(ts, model, None, tmp_path / "f.gpkg", 20, block=16, exclude=sp > 0, strategy="uncertainty")
    assert plain.rows.tolist() == ref.rows.tolist() and plain.cols.tolist() == ref.cols.tolist()
    with pytest.raises(ConfigError, match="strategy must be one of coverage, uncertainty; got 'best'"):
        suggest_samples(ts, model, None, tmp_path / "x.gpkg", 3, strategy="best")
    with pytest.raises(SystemExit) as e:
        main(["suggest", str(tiny_sample.manifest), "--model", CENTROID, "--n", "3", "--out", str(tmp_path / "y.gpkg"),
              "--strategy", "best"])
    assert e.value.code == 2 and not (tmp_path / "y.gpkg").exists()
    assert "--strategy: invalid choice: 'best'" in one_line(capsys.readouterr().err, "pimc suggest")
