"""Numbers over seeds: means ± standard deviations, paired differences, and the verdict of the
report (does the pretrained network beat the same network trained from scratch?)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["METHODS", "fmt_frac", "mean_std", "paired", "pm", "stronger_scratch", "verdict"]

#: Method keys, in table order, and their labels.
METHODS: dict[str, str] = {
    "pimc_finetuned": "PIMC pretrained + fine-tuned",
    "pimc_probe": "PIMC pretrained, linear probe (frozen)",
    "random_probe": "same encoders untrained (random weights), linear probe",
    "scratch": "same encoders from scratch",
    "random_forest": "RandomForest on the series",
    "cnn1d": "1-D CNN (TempCNN) from scratch",
}


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the finite values."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def pm(values: Sequence[float], digits: int = 3, scale: float = 1.0, signed: bool = False) -> str:
    """``mean ± std`` of the values with ``digits`` decimals (× ``scale``; ``signed``: with a sign)."""
    m, s, n = mean_std(values)
    if n == 0:
        return "—"
    sign = "+" if signed else ""
    return f"{m * scale:{sign}.{digits}f} ± {s * scale:.{digits}f}" if n > 1 else f"{m * scale:{sign}.{digits}f}"


def stronger_scratch(syn: Mapping[str, Any]) -> dict[str, Any] | None:
    """The variant whose fine-tuning change trains the from-scratch network better on average than
    the configured recipe (full inputs, pretraining unchanged), or None: the pretrained network
    has to beat scratch at its best measured recipe, not only at the one chosen for pretraining."""
    candidates = [ab for ab in syn.get("ablations") or []
                  if ab.get("finetune") and not ab.get("pretrain") and ab.get("inputs", "all") == "all"
                  and ab.get("scratch_accuracy")]
    best = max(candidates, key=lambda ab: mean_std(ab["scratch_accuracy"])[0], default=None)
    base = mean_std(syn["table"][0]["scratch"]["accuracy"])[0]
    return best if best is not None and mean_std(best["scratch_accuracy"])[0] > base else None


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """``a - b`` paired over the seeds: ``{"mean_diff", "std_diff", "n", "wins"}`` (wins: seeds where a > b)."""
    d = np.asarray(a) - np.asarray(b)
    m, s, n = mean_std(d.tolist())
    return {"mean_diff": m, "std_diff": s, "n": n, "wins": int((d > 0).sum())}


def verdict(table: list[dict[str, Any]]) -> dict[str, Any]:
    """Pretrained vs scratch at the smallest label fraction: paired differences over the seeds."""
    first = table[0]
    out: dict[str, Any] = {"fraction": first["fraction"]}
    for other in ("pimc_finetuned", "pimc_probe"):
        for k in ("accuracy", "macro_f1"):
            out[f"{other}_{k}"] = paired(first[other][k], first["scratch"][k])
    return out


def fmt_frac(f: float) -> str:
    """A label fraction as a percentage (``0.05`` → ``5 %``)."""
    return f"{f * 100:g} %"
