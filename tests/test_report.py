"""``python -m training report``: the evaluation report on a tiny (``--quick``) config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pimc_core.errors import ConfigError
from training import __main__ as cli
from training import report

NUM = r"[-+]?\d+(?:\.\d+)?"
PM = rf"{NUM}(?: ± {NUM})?"


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """One tiny report for the module: (return code, Markdown text, folder, report.json)."""
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "docs" / "RESULTS.md"
    rc = cli.main(["report", "--quick", "--out", str(out), f"out_dir={tmp / 'work'}"])
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    data = json.loads((tmp / "work" / "report.json").read_text()) if (tmp / "work" / "report.json").exists() else {}
    return rc, text, out.parent, data


def test_report_has_tables_with_computed_numbers(quick_report):
    rc, text, _, data = quick_report
    assert rc == 0
    assert text.startswith("# PIMC — evaluation results")
    for head in ("- command: `python -m training report --quick", "- date: ", "- machine: ", "- commit: ",
                 "wall time of the whole report"):
        assert head in text
    # synthetic: every method has a number (mean ± std over the 2 seeds) at every fraction
    for label in report.METHODS.values():
        row = re.search(rf"^\| {re.escape(label)} \|(.*)\|$", text, re.M)
        assert row, label
        cells = [c.strip().strip("*") for c in row.group(1).split("|")]
        assert len(cells) == 2 and all(re.fullmatch(PM, c) for c in cells), (label, cells)
    assert re.search(rf"^\| 5 % \| {PM} \(\d+–\d+\) \| {PM} \| {PM} % \|$", text, re.M)  # labelled fields / pixels
    assert re.search(r"does PIMC pretraining beat the same encoders trained from scratch\?\*\* (Yes|Yes, narrowly \(.*\)|No): ",
                     text)
    # the numbers in the Markdown are the ones in report.json
    t0 = data["synthetic"]["table"][0]
    acc = t0["pimc_finetuned"]["accuracy"]
    assert len(acc) == 2 and all(0 <= a <= 1 for a in acc)
    assert f"{np.mean(acc):.3f} ± {np.std(acc, ddof=1):.3f}" in text
    for name in ("no time shift in pretraining", "patch dropped half the time",  # the quick config's ablations
                 "only the RP encoder transferred", "classifier without the patch"):
        assert re.search(rf"^\| {name} \| [^|]+ \| {PM} \| {PM} \| {PM} \|$", text, re.M), name
    assert "only rp_encoder loaded from pretraining" in text
    ab = {a["name"]: a for a in data["synthetic"]["ablations"]}
    # scratch retrained on the same inputs / with the same fine-tuning change: a paired difference
    for name in ("classifier without the patch", "patch dropped half the time"):
        assert len(ab[name]["scratch_accuracy"]) == 2
        assert f"scratch trained the same way: {np.mean(ab[name]['scratch_accuracy']):.3f}" in text
    assert "scratch_accuracy" not in ab["only the RP encoder transferred"]
    # the quick recipe fine-tunes with LP-FT, and says so
    assert "first 3 steps of the head alone on the frozen encoders" in text and "LP-FT for both networks" in text
    # the untrained network's probe is computed (not copied from the pretrained one)
    assert t0["random_probe"]["accuracy"] != t0["pimc_probe"]["accuracy"]
    assert "pretrained minus untrained" in text
    assert "—" not in "".join(re.findall(r"^\| (?:PIMC|same|Random|1-D).*$", text, re.M))


def test_verdict_counts_only_a_lead_over_the_stronger_scratch():
    """A fine-tuning variant that trains scratch better on average becomes the bar the pretrained
    network must clear as well; variants that change pretraining, transfer or inputs do not."""
    syn = {"table": [{"scratch": {"accuracy": [0.80, 0.82, 0.84]}}],
           "ablations": [{"name": "pre", "pretrain": {"steps": 1}, "finetune": {"lr": 1.0}, "inputs": "all",
                          "scratch_accuracy": [0.99, 0.99, 0.99]},
                         {"name": "no patch", "finetune": {}, "inputs": "temporal", "scratch_accuracy": [0.95] * 3},
                         {"name": "weaker", "finetune": {"head_steps": 0}, "inputs": "all",
                          "scratch_accuracy": [0.79, 0.80, 0.81]}]}
    assert report.stronger_scratch(syn) is None
    syn["ablations"].append({"name": "stronger", "finetune": {"head_steps": 0}, "inputs": "all",
                             "scratch_accuracy": [0.83, 0.83, 0.83]})
    syn["ablations"].append({"name": "strongest", "finetune": {"lr": 0.1}, "inputs": "all",
                             "scratch_accuracy": [0.85, 0.85, 0.85]})
    assert report.stronger_scratch(syn)["name"] == "strongest"


def test_report_forecast_and_real_sections(quick_report):
    _, text, _, data = quick_report
    assert "## 2. Forecasting NDVI on the real Landsat series" in text
    for name in ("PIMC forecaster (pretrained)", "PIMC forecaster (from scratch)", "persistence"):
        assert re.search(rf"^\| {re.escape(name)} \| \**{NUM}\** \| {NUM} \|", text, re.M), name
    runs = data["forecast"]["runs"]
    assert {r["variant"] for r in runs} == {"pretrained", "scratch"}
    assert "## 3. Other real data reachable offline" in text
    assert "PIMC is not evaluated on it" in text  # the single-date S2 scene, said why
    assert "## 4. What this shows, and what it does not" in text


def test_report_writes_plots(quick_report):
    _, text, folder, _ = quick_report
    for name in ("results_synthetic_accuracy.png", "results_forecast_rmse.png"):
        p = folder / "img" / name
        assert p.exists() and p.stat().st_size > 5000
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](img/{name})" in text
    assert not list(folder.rglob(".*.tmp*"))  # atomic writes leave no temporary file


def test_config_checks():
    with pytest.raises(ConfigError, match="transfer"):
        report.load_report_config(None, ['synthetic.ablations=[{"name": "x", "transfer": ["rp_encodr"]}]'])
    with pytest.raises(ConfigError, match="inputs"):
        report.load_report_config(None, ['synthetic.ablations=[{"name": "x", "inputs": "patch"}]'])
    cfg = report.load_report_config(None, ["seeds=[3, 4]", "synthetic.pretrain.steps=7", "fractions=[1.0, 0.1]"])
    assert cfg.seeds == (3, 4) and cfg.synthetic.pretrain.steps == 7 and cfg.fractions == (0.1, 1.0)
    with pytest.raises(ConfigError, match="sizee"):
        report.load_report_config(None, ["synthetic.sizee=3"])
    with pytest.raises(ConfigError, match="fractions"):
        report.load_report_config(None, ["fractions=[0, 0.5]"])
    quick = report.load_report_config(None, [], quick=True)
    assert quick.synthetic.size < 100 and quick.synthetic.pretrain.steps < 20


def test_config_file_unknown_key(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("seeds: [0]\nsynthetic: {size: 32, colour: red}\n")
    with pytest.raises(ConfigError, match="colour"):
        report.load_report_config(p)
    assert cli.main(["report", "--config", str(p), "--out", str(tmp_path / "x.md")]) == 2
    assert not (tmp_path / "x.md").exists()


def test_field_split_is_by_field_and_fractions_are_nested():
    rng = np.random.default_rng(0)
    fields = np.repeat(np.arange(1, 41), 5).reshape(20, 10)  # 40 fields of 5 px
    cls_of = {f: 1 + (f % 3) for f in range(1, 41)}
    labels = np.vectorize(cls_of.get)(fields)
    train, test = report.field_split(labels, fields, 0.5, rng)
    for c in (1, 2, 3):
        assert not set(train[c]) & set(test[c])
        assert set(train[c]) | set(test[c]) == {f for f, k in cls_of.items() if k == c}
        assert all(cls_of[f] == c for f in list(train[c]) + list(test[c]))
    small = report.fields_for_fraction(train, 0.01)
    mid = report.fields_for_fraction(train, 0.5)
    full = report.fields_for_fraction(train, 1.0)
    for c in (1, 2, 3):
        assert len(small[c]) == 1  # at least one field per class
        assert set(small[c]) <= set(mid[c]) <= set(full[c]) == set(train[c])


def test_mean_std():
    assert report.mean_std([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2)), 2)
    assert report.mean_std([0.5]) == (0.5, 0.0, 1)
    m, s, n = report.mean_std([])
    assert n == 0 and np.isnan(m)


def test_missing_config_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["report", "--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "x.md")]) == 2
    err = capsys.readouterr().err
    assert "training report: error:" in err and "missing.yaml" in err and "Traceback" not in err
    assert cli.main(["report", "--from-json", str(tmp_path / "nope.json"), "--out", str(tmp_path / "x.md")]) == 2
    assert not (tmp_path / "x.md").exists()


def test_help_lists_report(capsys):
    assert cli.main(["--help"]) == 0
    assert "report" in capsys.readouterr().out


def test_render_again_from_report_json(quick_report, tmp_path):
    _, text, folder, _ = quick_report
    out = tmp_path / "again" / "RESULTS.md"
    assert cli.main(["report", "--from-json", str(folder.parent / "work" / "report.json"), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == text
    assert (out.parent / "img" / "results_synthetic_accuracy.png").exists()


def test_finished_seeds_are_reused_by_the_same_code_and_config(quick_report, tmp_path, monkeypatch):
    """An interrupted report resumes: each finished seed's result is saved with the code and
    config it came from, and a rerun with the same ones reuses it (and says so)."""
    from training import report
    from training.report import synthetic

    _, _, _, data = quick_report
    work = Path(data["config"]["out_dir"])
    saved = json.loads((work / "synthetic_seed0" / "result.json").read_text())
    assert saved["key"]["code"] == report.code_fingerprint() and saved["key"]["seed"] == 0
    cfg = report.load_report_config(None, [f"out_dir={work}"], quick=True)
    calls = []
    monkeypatch.setattr(synthetic, "synthetic_seed", lambda *a, **k: calls.append(a) or {"seed": a[1]})
    import torch

    res = synthetic.cached_seed(cfg, 0, work, torch.device("cpu"), saved["key"]["threads"])
    assert not calls and res["cached"] == saved["date"] and res["rows"] == saved["result"]["rows"]
    other = report.load_report_config(None, [f"out_dir={work}", "synthetic.rf_trees=11"], quick=True)
    synthetic.cached_seed(other, 0, work, torch.device("cpu"), saved["key"]["threads"])
    assert len(calls) == 1  # another config: computed again
