"""Section 4 of the report: what the numbers show and what they do not, written from the numbers
of the run (which method wins, pretrained minus scratch, why pretraining does or does not help)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from training.report.forecast import forecast_table
from training.report.stats import METHODS, fmt_frac, mean_std, pm, stronger_scratch

__all__ = ["md_discussion"]


def _range(values: Sequence[int]) -> str:
    """``3–5``, or ``1`` when every value is the same."""
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def _separability(d_pr: Sequence[float]) -> str:
    """What the pretrained-minus-untrained probe differences (one per seed) say, spread included."""
    m, sd, n = mean_std(d_pr)
    per_seed = ", ".join(f"{v:+.3f}" for v in d_pr)
    if n > 1 and m < -sd:
        return ("Pretraining made the frozen features *less* class-separable than the random weights it started from "
                f"(per seed {per_seed}): the InfoNCE task rewards whatever tells one pixel's series and patch from the "
                "others', and at one labelled field per class the details that identify a pixel or field do not carry "
                "over to other fields, while a random convolutional network (like random-kernel methods) keeps the "
                "series' shape without preferring such details.")
    if n > 1 and m > sd:
        return f"Pretraining made the frozen features more class-separable than its random starting weights (per seed {per_seed})."
    return (f"No consistent difference (per seed {per_seed}): the seeds disagree in sign or the mean is within one "
            "standard deviation, so pretraining did not make the frozen features reliably more class-separable than "
            "the random weights it started from — random convolutional features of a series are already a strong "
            "baseline (the idea behind random-kernel methods).")


def md_investigation(rep: dict[str, Any], syn: dict[str, Any]) -> list[str]:
    """Why pretraining does (not) help at the smallest fraction, from the numbers of this run."""
    cfg = rep["config"]["synthetic"]
    t0 = syn["table"][0]
    acc = lambda m: np.asarray(t0[m]["accuracy"])  # noqa: E731
    d_ft = (acc("pimc_finetuned") - acc("scratch")).tolist()
    d_lp = (acc("pimc_probe") - acc("scratch")).tolist()
    d_pr = (acc("pimc_probe") - acc("random_probe")).tolist()
    m_ft, s_ft, _ = mean_std(d_ft)
    fpc = [v for d in t0["fields_per_class"] for v in d.values()]
    head = ("What limits the gain of pretraining here" if m_ft > s_ft else
            "Why pretraining gains little or nothing here")
    sep = ("the frozen pretrained embeddings alone are less class-separable than what supervised training finds"
           if mean_std(d_lp)[0] < 0 else
           "the frozen pretrained embeddings alone separate the classes at least as well as supervised training")
    L = [f"- {head} (read with the numbers above). (1) Few labels are not few pixels: "
         f"{fmt_frac(t0['fraction'])} of the labels is {_range(fpc)} whole field(s) per class, "
         f"{pm(t0['train_pixels'], 0)} pixels, and the from-scratch network reaches "
         f"{pm(t0['scratch']['accuracy'])} overall accuracy on the other fields. (2) Linear probe on the frozen "
         f"encoders {pm(d_lp, signed=True)} against scratch, fine-tuned encoders {pm(d_ft, signed=True)}: {sep}. "
         "(3) The contrastive task pairs a pixel's series with an image "
         "patch around it; neighbouring pixels of one field share both views, so InfoNCE can be solved by features "
         "that say *which field* (its soil and canopy brightness) rather than *which crop calendar* — with a single "
         "median composite as the patch, crops with the same endmembers and different timing even look alike in "
         "the patch view, and the pretrained features need not encode timing at all. (4) The same linear probe on "
         f"the untrained network (the random weights pretraining starts from) scores {pm(t0['random_probe']['accuracy'])}; "
         f"pretrained minus untrained: {pm(d_pr, signed=True)}. "
         + _separability(d_pr)]
    changes = []
    if cfg.get("reference", "median") != "median":
        changes.append(f"patches cut from {cfg['reference'].split(':')[1]} composites of consecutive groups of dates "
                       "instead of one median composite (the patch view then carries the seasonal course, so matching "
                       "it needs timing)")
    if (cfg.get("pretrain") or {}).get("prototypes"):
        changes.append(f"a swapped-prototype term next to InfoNCE ({cfg['pretrain']['prototypes']} prototypes, balanced "
                       "assignments): pixels whose series and patch agree on a prototype are pulled together, so pixels of "
                       "the same crop in other fields are no longer only negatives")
    aug = (cfg.get("pretrain") or {}).get("augment") or {}
    if any(aug.get(k) for k in ("time_shift", "amplitude", "channel_scale")):
        changes.append(f"pretraining augmentations that make the temporal view invariant to the per-field nuisances "
                       f"(time shift up to {aug.get('time_shift')} steps, amplitude ± {aug.get('amplitude')}, per-index "
                       f"scale ± {aug.get('channel_scale')})")
    if (cfg.get("finetune") or {}).get("head_steps"):
        changes.append(f"LP-FT for both networks: {cfg['finetune']['head_steps']} steps of the classifier head alone on "
                       "the frozen encoders before everything is fine-tuned, so that the encoders start moving under a "
                       "trained head rather than the gradients of a random one")
    if changes:
        # recipe settings that an ablation changes back, i.e. re-measures on the reported scenes
        remeasured = [what for part, key, what in (("pretrain", "prototypes", "the prototype term"),
                                                   ("pretrain", "augment", "the augmentation"),
                                                   ("finetune", "head_steps", "LP-FT"))
                      if (cfg.get(part) or {}).get(key)
                      and any(key in (a.get(part) or {}) for a in cfg.get("ablations") or [])]
        L.append("- What the recipe changes for that, in general (not for one seed): " + "; ".join(changes)
                 + ". They were chosen on separate tuning scenes with one field per class (scene seeds 1–3 and "
                   "2000–2002; the comments in training/configs/report.yaml give the figures), not on the scenes "
                   "reported here"
                 + (f"; the ablation table in section 1 re-measures {' and '.join(remeasured)} on these scenes."
                    if remeasured else "."))
    L.append("- What would test the claim better: more seeds (the per-seed spread at one field per class is large), "
             "longer pretraining on a GPU, a pretraining objective that does not treat same-field pixels as "
             "negatives, and a real labelled time series.")
    return L


def md_discussion(rep: dict[str, Any]) -> list[str]:
    syn = rep.get("synthetic")
    L = ["## 4. What this shows, and what it does not", ""]
    if syn:
        t0, t1 = syn["table"][0], syn["table"][-1]
        mean = lambda t, m: mean_std(t[m]["accuracy"])[0]  # noqa: E731
        best_lo = max(METHODS, key=lambda m: mean(t0, m))
        best_hi = max(METHODS, key=lambda m: mean(t1, m))
        L += [f"- On the synthetic benchmark, with {fmt_frac(t0['fraction'])} of the labels the best method is "
              f"{METHODS[best_lo]} ({mean(t0, best_lo):.3f}); with {fmt_frac(t1['fraction'])} it is "
              f"{METHODS[best_hi]} ({mean(t1, best_hi):.3f}). Pretrained − scratch, overall accuracy: "
              + ", ".join(f"{fmt_frac(t['fraction'])} {mean(t, 'pimc_finetuned') - mean(t, 'scratch'):+.3f}" for t in syn["table"])
              + ("." if (alt := stronger_scratch(syn)) is None else
                 f" (at {fmt_frac(t0['fraction'])} against scratch fine-tuned as in \"{alt['name']}\", its better "
                 f"recipe there: {mean(t0, 'pimc_finetuned') - mean_std(alt['scratch_accuracy'])[0]:+.3f})."),
              f"- The smallest fraction still labels whole fields: {pm(t0['fields'], 1)} fields "
              f"({pm(t0['train_pixels'], 0)} pixels). The standard deviations come from {len(syn['runs'])} seeds, each "
              "a different scene, split, label draw and initialisation; with so few seeds a difference smaller than "
              "about one standard deviation is not a finding.",
              "- The synthetic scene is generated by this project: classes differ by phenology (timing and amplitude of "
              "green-up and senescence) with per-field jitter, clouds and noise. What wins here need not win on real "
              "crops; it is a controlled test of label efficiency, not a claim about PASTIS."]
        L += md_investigation(rep, syn)
    fc = rep.get("forecast")
    if fc:
        rows = forecast_table(fc)
        best = min(rows, key=lambda r: mean_std(r["rmse"])[0])
        L += [f"- Forecast on the real Landsat series: lowest RMSE {best['method']} ({mean_std(best['rmse'])[0]:.4f}). "
              "This is one 61 × 61 px site (one land-cover mix), so it says little about other places."]
    L += ["- Not shown: any real labelled time series (none is reachable offline here — see section 3), GPU "
          "training, larger encoders, or the paper's PASTIS / EuroSAT protocol.", ""]
    return L
