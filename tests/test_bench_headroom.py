"""The label-headroom benchmark: its `labels` forest is the held-out benchmark's RandomForest, and its
table states the margin per stack and per group."""

from __future__ import annotations

from benchmarks.bench_label_headroom import markdown, one_stack


def test_the_labels_column_is_the_heldout_benchmarks_random_forest(tmp_path):
    from pimc_core.demo import random_forest_baseline

    r = one_stack(tmp_path / "s", seed=2, size=48, cloud=0.15, per_class=(2, 20), extra=5)
    d = tmp_path / "s"
    rf = random_forest_baseline(d / "syn" / "manifest.yaml", d / "syn" / "labels.tif", d / "seen.tif",
                                train_tif=d / "points.tif")
    assert r["labels"] == rf["oa"] and r["pixels"] == rf["pixels"]
    assert 0 < r["many_fields"] <= 1 and r["other_fields"] >= 2 and r["labelled_fields"] >= 2
    shares = [w for _, _, w in r["recall"].values()]
    assert abs(sum(shares) - 1) < 1e-9 and all(0 <= a <= 1 and 0 <= m <= 1 for a, m, _ in r["recall"].values())
    # the overall accuracy is the share-weighted recall
    assert abs(sum(a * w for a, _, w in r["recall"].values()) - r["labels"]) < 1e-9


def test_the_table_gives_each_stacks_headroom_and_each_groups_spread():
    rows = [{"seed": s, "size": 256, "cloud": 0.15, "variability": 1.0, "pixels": 100, "labelled_fields": 27,
             "other_fields": 383, "median_clear": 18.0, "labels": lab, "many_fields": many}
            for s, lab, many in ((2, 0.90, 0.91), (3, 0.80, 0.90))]
    md = markdown({"per_class": [3, 50], "extra": 20, "variability": 1.0, "rows": rows})
    assert "| 256 | 0.15 | 2 | 18 | 27 | 383 | 0.9000 | 0.9100 | +1.0 |" in md
    assert "| 256 | 0.15 | 3 | 18 | 27 | 383 | 0.8000 | 0.9000 | +10.0 |" in md
    assert "| 256 | 0.15 | 2 | +5.5 ± 6.4 | 1/2 | 1/2 |" in md
