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
