"""benchmarks.bench_pretraining: labels on n whole fields per class, and the tables' arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import bench_pretraining as bp


def _mosaic() -> tuple[np.ndarray, np.ndarray]:
    """6 × 8 px, 12 fields of 2 × 2 px: class 1 on 6 fields, class 2 on 4, class 3 on 1, class 4
    on 1 field; one pixel of field 12 unlabelled in the truth."""
    fields = np.kron(np.arange(1, 13).reshape(3, 4), np.ones((2, 2), np.int32)).astype(np.int32)
    field_class = {1: 1, 2: 1, 3: 2, 4: 1, 5: 2, 6: 1, 7: 3, 8: 2, 9: 1, 10: 2, 11: 4, 12: 1}
    truth = np.vectorize(field_class.get)(fields).astype(np.uint8)
    truth[5, 7] = 0
    return fields, truth


def _labelled_fields(fields, labels) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for f in np.unique(fields[labels > 0]):
        out.setdefault(int(labels[fields == f].max()), set()).add(int(f))
    return out


def test_one_field_per_class_whole_fields():
    fields, truth = _mosaic()
    lab = bp.fields_per_class(fields, truth, 1, seed=0)
    assert lab.dtype == truth.dtype and lab.shape == truth.shape
    per = _labelled_fields(fields, lab)
    assert {c: len(f) for c, f in per.items()} == {1: 1, 2: 1, 3: 1, 4: 1}
    for f in set().union(*per.values()):  # whole fields, with the truth's classes
        m = fields == f
        assert np.array_equal(lab[m], truth[m])
    assert not lab[~np.isin(fields, list(set().union(*per.values())))].any()


def test_many_fields_per_class_keep_one_withheld():
    fields, truth = _mosaic()
    per = _labelled_fields(fields, bp.fields_per_class(fields, truth, 10, seed=0))
    # class 1 has 6 fields and class 2 has 4: all but one; classes 3 and 4 have one, labelled
    assert {c: len(f) for c, f in per.items()} == {1: 5, 2: 3, 3: 1, 4: 1}
    per3 = _labelled_fields(fields, bp.fields_per_class(fields, truth, 3, seed=0))
    assert {c: len(f) for c, f in per3.items()} == {1: 3, 2: 3, 3: 1, 4: 1}


def test_fields_are_drawn_by_seed():
    fields, truth = _mosaic()
    a = bp.fields_per_class(fields, truth, 2, seed=5)
    assert np.array_equal(a, bp.fields_per_class(fields, truth, 2, seed=5))
    drawn = {frozenset(_labelled_fields(fields, bp.fields_per_class(fields, truth, 2, seed=s))[1]) for s in range(8)}
    assert len(drawn) > 1
    with pytest.raises(ValueError, match="fields per class"):
        bp.fields_per_class(fields, truth, 0, seed=0)


def _row(seed: int, fields: int, pre: float, nopre: float, pre_s: float, nopre_s: float) -> dict:
    def r(oa):
        return {"oa": oa, "macro_f1": oa, "pixels": 100}

    return {"seed": seed, "size": 96, "cloud": 0.15, "fields": fields, "rf": r(0.5), "pre": r(pre),
            "nopre": r(nopre), "pre+scene": r(pre_s), "nopre+scene": r(nopre_s)}


def test_markdown_differences_and_spread():
    rows = [_row(2, 1, 0.80, 0.70, 0.90, 0.90), _row(3, 1, 0.70, 0.70, 0.85, 0.87), _row(2, 10, 0.9, 0.9, 0.9, 0.9)]
    md = bp.markdown(rows)
    assert "| 1 | 0.15 | 2 | 100 | 0.8000 | 0.7000 | 0.9000 | 0.9000 | 0.5000 | +10.0 | +0.0 |" in md
    summary = next(line for line in md.splitlines() if line.startswith("| 1 | 0.15 | 2 |") and "±" in line)
    cells = [c.strip() for c in summary.strip("|").split("|")]
    # Δ pretraining, labels only: +10 and 0 points → 5.0 ± 7.1, one seed ahead
    assert cells[8] == "+5.0 ± 7.1 (1/2 > 0)"
    # Δ pretraining, + scene: 0 and -2 points
    assert cells[9] == "-1.0 ± 1.4 (0/2 > 0)"
    # Δ scene, pretrained: +10 and +15
    assert cells[10] == "+12.5 ± 3.5 (2/2 > 0)"


def test_verdict_says_gain_or_nothing():
    gain = [_row(s, 1, 0.8, 0.7, 0.90 + 0.001 * s, 0.85) for s in range(5)]  # +5 points every seed
    v = bp.verdict(gain)
    assert v.startswith("With 1 labelled field per class, pretraining adds +5.")
    assert "a measurable gain; ahead on 5 of 5 scenes) once the scene's pixels" in v
    mixed = [_row(s, 10, 0.8, 0.8, 0.85 + d, 0.85) for s, d in enumerate((0.02, -0.02, 0.01, -0.01, 0.0))]
    v = bp.verdict(mixed)
    assert "With 10 labelled fields per class, pretraining adds +0.0 ± 1.6 points" in v
    assert "nothing measurable; ahead on 2 of 5 scenes) once" in v


def test_results_section_written_replaced_and_kept(tmp_path, capsys):
    import json

    from training.output import keep_marked_sections

    root = tmp_path / "runs"
    root.mkdir()
    (root / "c0.15_s2.json").write_text(json.dumps([_row(2, 1, 0.8, 0.7, 0.9, 0.9)]))
    (root / "c0.15_s3.json").write_text(json.dumps([_row(3, 1, 0.7, 0.7, 0.85, 0.87)]))
    out = tmp_path / "RESULTS.md"
    out.write_text("# results\n\nsection 1\n")
    for _ in range(2):  # a second run replaces the section
        bp.main(["--report", "--root", str(root), "--results", str(out)])
    text = out.read_text()
    assert text.startswith("# results\n\nsection 1\n") and text.count(bp.BEGIN) == 1 and text.count(bp.END) == 1
    assert "python -m benchmarks.bench_pretraining --report --root" in text
    assert "**Answer.** With 1 labelled field per class, pretraining adds -1.0 ± 1.4 points" in text
    assert "| 1 | 0.15 | 3 | 100 | 0.7000 | 0.7000 | 0.8500 | 0.8700 | 0.5000 | +0.0 | -2.0 |" in text
    assert "With 1 labelled field per class" in capsys.readouterr().out
    # the report rewrites the file and keeps the section
    kept = keep_marked_sections(out, "# new report\n")
    assert kept.startswith("# new report\n") and bp.BEGIN in kept and kept.rstrip().endswith(bp.END)


def test_tables_of_a_subset_of_the_variants():
    rows = [{k: v for k, v in _row(s, 1, 0.8, 0.7, 0.9, 0.88).items() if k not in ("pre", "nopre")} for s in (2, 3)]
    md = bp.markdown(rows)
    assert md.splitlines()[0] == ("| fields/class | cloud | seed | held-out px | pre+scene | nopre+scene | rf | "
                                  "Δ pretraining, + scene |")
    assert "| 1 | 0.15 | 3 | 100 | 0.9000 | 0.8800 | 0.5000 | +2.0 |" in md
    v = bp.verdict(rows)
    assert v.startswith("With 1 labelled field per class, pretraining adds +2.0 ± 0.0 points")
    assert "labels only" not in v and v.endswith("once the scene's pixels are used in fine-tuning.")


def test_write_labels_and_collect_a_stopped_run(tmp_path, monkeypatch):
    """A scene folder without its JSON: the labellings whose needed fits all have a map become rows,
    scored on the pixels outside the labelled fields of the labelling's raster."""
    import json

    import rasterio

    from pimc_core.models import model_file
    from tests.conftest import write_tif

    fields, truth = _mosaic()
    d = tmp_path / "runs" / "c0.15_s7"
    (d / "syn").mkdir(parents=True)
    write_tif(d / "syn" / "labels.tif", truth)
    write_tif(d / "syn" / "fields.tif", fields)
    for t in range(3):
        write_tif(d / "syn" / f"S2_2023010{t + 1}.tif", np.ones((6, 6, 8), np.uint16))
    lab1 = bp.write_labels(d / "syn" / "fields.tif", d / "syn" / "labels.tif", d / "labels_1.tif", 1, seed=3)
    with rasterio.open(lab1) as src:
        assert np.array_equal(src.read(1), bp.fields_per_class(fields, truth, 1, seed=3))
    bp.write_labels(d / "syn" / "fields.tif", d / "syn" / "labels.tif", d / "labels_10.tif", 10, seed=3)
    (d / "run.json").write_text(json.dumps({"commit": "abc123", "load": 3.5}))
    pred = truth.copy()
    pred[truth == 2] = 1  # class 2 mapped as class 1
    for name in ("f1_pre+scene", "f1_nopre+scene", "f10_pre+scene"):  # f10: one of the pair only
        (d / name / "maps").mkdir(parents=True)
        write_tif(d / name / "maps" / "classes.tif", pred if name == "f1_pre+scene" else truth)
        (d / name / "model.pimc").write_text("")
    monkeypatch.setattr(model_file, "read_metadata", lambda p: {"training": {"seconds": 12.0}})
    monkeypatch.setattr("pimc_core.demo.random_forest_baseline", lambda *a, **k: {"oa": 0.5, "macro_f1": 0.5,
                                                                                     "pixels": 1})
    done = tmp_path / "runs" / "c0.15_s8"  # a finished scene: its JSON, not its folder, gives the rows
    (done / "f1_pre+scene" / "maps").mkdir(parents=True)
    (tmp_path / "runs" / "c0.15_s8.json").write_text(json.dumps([]))
    rows = bp.load_rows(tmp_path / "runs", ("pre+scene", "nopre+scene"))
    assert len(rows) == 1 and rows[0]["fields"] == 1 and rows[0]["seed"] == 7 and rows[0]["commit"] == "abc123"
    r = rows[0]
    with rasterio.open(lab1) as src:
        seen = src.read(1)
    held = (truth > 0) & (seen == 0)
    assert r["nopre+scene"]["oa"] == 1.0 and r["nopre+scene"]["pixels"] == int(held.sum())
    assert r["pre+scene"]["oa"] == pytest.approx(float((pred[held] == truth[held]).mean()))
    assert r["pre+scene"]["fit_s"] == 12.0 and r["size"] == 8 and r["dates"] == 3
