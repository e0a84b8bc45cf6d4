"""The report's figures: accuracy vs label fraction (section 1) and forecast RMSE (section 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training.output import save_figure
from training.report.stats import METHODS, mean_std

__all__ = ["plot_forecast", "plot_synthetic"]


def plot_synthetic(syn: dict[str, Any], path: Path) -> None:
    """Accuracy and macro F1 against the label fraction, every method (mean ± std over the seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = syn["table"]
    fr = [t["fraction"] * 100 for t in table]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"pimc_finetuned": ("#d62728", "o", "-"), "pimc_probe": ("#ff9896", "s", "--"),
              "random_probe": ("#7f7f7f", "x", "--"), "scratch": ("#1f77b4", "^", "-"),
              "random_forest": ("#2ca02c", "D", ":"), "cnn1d": ("#9467bd", "v", "-.")}
    for ax, key, title in zip(axes, ("accuracy", "macro_f1"), ("overall accuracy", "macro F1")):
        for m, label in METHODS.items():
            stats = [mean_std(t[m][key]) for t in table]
            mu = [s[0] for s in stats]
            sd = [s[1] for s in stats]
            col, mk, ls = styles[m]
            ax.errorbar(fr, mu, yerr=sd, label=label, color=col, marker=mk, linestyle=ls, capsize=3, lw=1.6)
        ax.set_xscale("log")
        ax.set_xticks(fr)
        ax.set_xticklabels([f"{f:g} %" for f in fr])
        ax.set_xlabel("labelled share of the training fields (per class, at least 1 field)")
        ax.set_ylabel(f"{title} on the test fields")
        ax.set_title(f"Synthetic benchmark: {title} (mean ± std, {len(syn['runs'])} seeds)", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    save_figure(fig, path)
    plt.close(fig)


def plot_forecast(rows: list[dict[str, Any]], path: Path, n_seeds: int) -> None:
    """Forecast RMSE per method (bars, mean ± std over the seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["method"] for r in rows]
    stats = [mean_std(r["rmse"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    y = np.arange(len(rows))[::-1]
    colors = ["#d62728" if n.startswith("PIMC") else "#7f7f7f" for n in names]
    ax.barh(y, [s[0] for s in stats], xerr=[s[1] for s in stats], color=colors, capsize=3)
    for yi, s in zip(y, stats):
        ax.text(s[0] + s[1], yi, f"  {s[0]:.4f}", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=9)
    ax.set_xlabel("NDVI RMSE on the held-out targets (lower is better)")
    ax.set_title(f"Forecast on the real Landsat series (mean ± std, {n_seeds} seed(s))", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
