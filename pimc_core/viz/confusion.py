"""The figure of an accuracy assessment's error matrix: sample counts beside estimated area
proportions, map classes as rows and reference classes as columns, class names on the axes.

Uses matplotlib's object API (no pyplot global state), like :mod:`pimc_core.viz.plotting`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pimc_core.viz.plotting import Figure, FigureCanvasAgg

__all__ = ["confusion_figure"]


def _panel(ax, values: np.ndarray, labels: Sequence[str], title: str, fmt: str, cmap: str) -> None:
    shown = np.nan_to_num(np.asarray(values, dtype=float))
    image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=max(float(shown.max()), 1e-12))
    q = len(labels)
    ax.set_xticks(range(q), labels, rotation=35, ha="right")
    ax.set_yticks(range(q), labels)
    ax.set_xlabel("reference class")
    ax.set_ylabel("map class")
    ax.set_title(title)
    light = shown.max() * 0.6
    for i in range(q):
        for j in range(q):
            ax.text(j, i, format(shown[i, j], fmt), ha="center", va="center", fontsize=9,
                    color="white" if shown[i, j] > light else "black")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def confusion_figure(counts: np.ndarray, proportions: np.ndarray, labels: Sequence[str],
                     title: str = "Error matrix") -> Figure:
    """Two heat maps of a (q, q) error matrix (rows map class, columns reference class).

    Args:
        counts: (q, q) sample counts ``n_ij``.
        proportions: (q, q) estimated area proportions ``p̂_ij`` (NaN shown as 0).
        labels: the q class names, in the order of the rows and columns.
    """
    q = len(labels)
    side = 2.2 + 0.75 * q
    fig = Figure(figsize=(2 * side + 1.2, side), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_counts, ax_area = fig.subplots(1, 2)
    _panel(ax_counts, counts, labels, "sample counts", ".0f", "Blues")
    _panel(ax_area, proportions, labels, "estimated area proportions", ".3f", "Greens")
    fig.suptitle(title)
    return fig
