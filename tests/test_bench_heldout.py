"""The held-out-field benchmark's table and summary: what docs/BENCHMARKS.md shows from its rows."""

from __future__ import annotations

from benchmarks.bench_heldout_map import DEFAULT_GRID, markdown, summary


def _row(size, cloud, seed, pimc, rf):
    return {"seed": seed, "size": size, "cloud": cloud, "fit_s": 100.0, "classify_s": 10.0, "points": 400 * (size // 128) ** 2,
            "pimc": {"oa": pimc, "macro_f1": pimc, "pixels": 1000}, "rf": {"oa": rf, "macro_f1": rf, "pixels": 1000},
            "inputs": "temporal", "pseudo": 10}


def test_the_summary_counts_leads_against_the_five_point_aim():
    rows = [_row(128, 0.15, 2, 0.90, 0.80), _row(128, 0.5, 2, 0.86, 0.85), _row(256, 0.15, 2, 0.80, 0.81),
            _row(256, 0.5, 2, 0.83, 0.80)]
    text = summary(rows)
    assert "Over the 4 stacks PIMC is ahead of the RandomForest on 3, by +0.032 ± 0.048" in text
    assert "from -0.010 to +0.100" in text and "5 points or more on 1 and under 2 points on 2" in text
    assert "By size: 128 px +0.055 (2 of 2 ahead), 256 px +0.010 (1 of 2 ahead)." in text
    md = markdown({"n_dates": 24, "fields": 0.1, "variability": 1.0, "points": [400, 1600], "overrides": [], "rows": rows})
    assert "pixels (400 on 128 px, 1600 on 256 px) drawn inside 10% of the fields" in md
    assert "| all | all | 4 |" in md and md.endswith(text)
    assert "Synthetic stacks of 24 dates; labels" in md  # default scene options are not named
    md = markdown({"n_dates": 24, "fields": 0.1, "haze": 0.02, "noise": 0.03, "points": [400], "overrides": [],
                   "rows": rows})
    assert ("24 dates, an unflagged atmospheric-correction residual (haze 0.02 in blue), per-observation "
            "reflectance noise 0.03; labels") in md


def test_the_default_grid_has_two_sizes_and_two_cloud_levels_and_the_hidden_stacks_size():
    sizes = {s for s, _ in DEFAULT_GRID}
    assert {128, 192, 256} <= sizes and all({(s, 0.15), (s, 0.5)} <= set(DEFAULT_GRID) for s in sizes)


def test_per_class_labels_draw_points_inside_a_few_fields_of_each_class(tmp_path):
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from benchmarks.bench_heldout_map import per_class_labels

    fields = np.repeat(np.arange(1, 9, dtype=np.uint16), 8).reshape(8, 8)  # row r is field r + 1
    truth = np.where(fields <= 3, 1, np.where(fields <= 7, 2, 3)).astype(np.uint8)  # 3, 4 and 1 fields
    prof = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "crs": "EPSG:32631",
            "transform": from_origin(0, 80, 10, 10)}
    for name, arr in (("truth.tif", truth), ("fields.tif", fields)):
        with rasterio.open(tmp_path / name, "w", dtype=arr.dtype, **prof) as dst:
            dst.write(arr, 1)
    seen_tif, pts_tif = per_class_labels(tmp_path / "truth.tif", tmp_path / "fields.tif", tmp_path / "seen.tif",
                                         tmp_path / "pts.tif", 2, 5, seed=0)
    with rasterio.open(seen_tif) as a, rasterio.open(pts_tif) as b:
        seen, pts = a.read(1), b.read(1)
    for c, n_fields in ((1, 2), (2, 2), (3, 1)):  # class 3 has a single field: it is taken
        assert len(np.unique(fields[seen == c])) == n_fields
        assert (pts == c).sum() == 5
    assert np.array_equal(seen[seen > 0], truth[seen > 0])
    assert ((pts > 0) <= (seen > 0)).all() and np.array_equal(pts[pts > 0], truth[pts > 0])
    md = markdown({"n_dates": 24, "fields": 0.1, "per_class": [2, 5], "points": [], "overrides": [],
                   "rows": [_row(128, 0.15, 2, 0.9, 0.8)]})
    assert "labels: 5 pixels per class drawn inside 2 fields per class" in md
