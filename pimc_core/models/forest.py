"""A random forest stored as arrays: the series member of a PIMC model's classifier ensemble.

scikit-learn's :class:`~sklearn.ensemble.RandomForestClassifier` trains the forest
(:func:`train_forest`); :class:`ArrayForest` keeps only its trees' arrays (split feature,
threshold, children, leaf class distribution), so a ``.pimc`` file holds it as plain tensors and
loads without pickle, and it predicts with numpy alone.

Why our own prediction: a fitted scikit-learn estimator can be saved only by pickle (or by a
converter to ONNX, a dependency for one model); the arrays of ``tree_`` are the whole model.
:meth:`ArrayForest.predict_proba` walks every tree level by level over all pixels at once and
gives scikit-learn's ``predict_proba`` to float32 rounding (``tests/test_forest.py`` compares them;
scikit-learn also compares the float32 features with float64 thresholds, ``x <= threshold`` goes
left).

Features are a pixel's gap-filled index series on the model's dates, flattened index by index:
``(N, C, T) → (N, C * T)`` (:func:`series_features`), the input a RandomForest peer reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from pimc_core.errors import InputError

__all__ = ["ArrayForest", "series_features", "train_forest"]


def series_features(series: np.ndarray) -> np.ndarray:
    """(N, C, T) gap-filled index series → (N, C * T) float32 features."""
    x = np.asarray(series, np.float32)
    return x.reshape(x.shape[0], -1)


def train_forest(x: np.ndarray, y: np.ndarray, n_classes: int, *, trees: int = 100, min_samples_leaf: int = 1,
                 max_features: str | float = "sqrt", seed: int = 0, threads: int = 1,
                 sample_weight: np.ndarray | None = None) -> "ArrayForest":
    """Train a scikit-learn random forest and keep its arrays.

    Args:
        x: (N, F) features (:func:`series_features`).
        y: (N,) class indices 0..K-1 (the classifier's output order).
        n_classes: K; classes absent from ``y`` get probability 0.
        trees, min_samples_leaf, max_features: scikit-learn's ``n_estimators``,
            ``min_samples_leaf``, ``max_features``.
        seed: ``random_state`` (the same data and seed give the same forest whatever ``threads``).
        sample_weight: (N,) weights of the samples, or None.
    """
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(n_estimators=int(trees), min_samples_leaf=int(min_samples_leaf),
                                max_features=max_features, random_state=int(seed), n_jobs=int(threads))
    rf.fit(np.asarray(x, np.float32), np.asarray(y, np.int64), sample_weight=sample_weight)
    return ArrayForest.from_sklearn(rf, n_classes)


@dataclass
class ArrayForest:
    """The trees of a forest as concatenated arrays (M nodes in all, K classes, F features).

    Attributes:
        feature: (M,) int32 split feature; -1 at a leaf.
        threshold: (M,) float64 split threshold (``x <= threshold`` goes left).
        left, right: (M,) int32 children, as indices into the concatenated arrays; -1 at a leaf.
        value: (M, K) float32 class distribution of each node (rows of leaves sum to 1).
        roots: (n_trees,) int32 index of each tree's root.
        n_features: F.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    n_features: int

    @classmethod
    def from_sklearn(cls, rf, n_classes: int) -> "ArrayForest":
        """From a fitted ``RandomForestClassifier`` whose classes are indices in 0..K-1."""
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "left", "right", "value")}
        roots, offset = [], 0
        cols = np.asarray(rf.classes_, np.int64)
        for est in rf.estimators_:
            t = est.tree_
            leaf = t.children_left < 0
            roots.append(offset)
            parts["feature"].append(np.where(leaf, -1, t.feature).astype(np.int32))
            parts["threshold"].append(np.asarray(t.threshold, np.float64))
            parts["left"].append(np.where(leaf, -1, t.children_left + offset).astype(np.int32))
            parts["right"].append(np.where(leaf, -1, t.children_right + offset).astype(np.int32))
            v = np.asarray(t.value[:, 0, :], np.float64)
            v = v / np.maximum(v.sum(axis=1, keepdims=True), 1e-12)
            full = np.zeros((t.node_count, int(n_classes)), np.float32)
            full[:, cols] = v
            parts["value"].append(full)
            offset += t.node_count
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        return cls(**arrays, roots=np.asarray(roots, np.int32), n_features=int(rf.n_features_in_))

    @property
    def n_classes(self) -> int:
        return int(self.value.shape[1])

    @property
    def n_trees(self) -> int:
        return int(self.roots.size)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, F) features → (N, K) float32 mean class distribution of the leaves the pixels reach."""
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(f"the forest reads {self.n_features} features per pixel; got an array of shape {x.shape}")
        n = x.shape[0]
        out = np.zeros((n, self.n_classes), np.float64)
        rows = np.arange(n)
        for root in self.roots:  # all pixels through one tree at a time: memory O(N)
            node = np.full(n, root, np.int64)
            while True:
                f = self.feature[node]
                inner = f >= 0
                if not inner.any():
                    break
                i = np.flatnonzero(inner)
                go_left = x[rows[i], f[i]].astype(np.float64) <= self.threshold[node[i]]
                node[i] = np.where(go_left, self.left[node[i]], self.right[node[i]])
            out += self.value[node]
        return (out / max(self.n_trees, 1)).astype(np.float32)

    def mix(self, prob: np.ndarray, series: np.ndarray, weight: float) -> np.ndarray:
        """The ensemble's probabilities: ``(1 - weight) * prob + weight * forest``.

        Args:
            prob: (N, K) the network's probabilities; series: (N, C, T) the same pixels' series.
        """
        if weight <= 0:
            return prob
        return (1 - weight) * prob + weight * self.predict_proba(series_features(series))

    def tensors(self) -> dict[str, np.ndarray]:
        """The arrays to store in a model file (see :meth:`from_tensors`)."""
        return {"feature": self.feature, "threshold": self.threshold, "left": self.left, "right": self.right,
                "value": self.value, "roots": self.roots,
                "n_features": np.asarray([self.n_features], np.int64)}

    @classmethod
    def from_tensors(cls, t: Mapping[str, object], where: str = "model file") -> "ArrayForest":
        """Inverse of :meth:`tensors`; checks the arrays fit together (InputError naming ``where``)."""
        try:
            a = {k: np.asarray(t[k].numpy() if hasattr(t[k], "numpy") else t[k]) for k in
                 ("feature", "threshold", "left", "right", "value", "roots", "n_features")}
        except KeyError as e:
            raise InputError(f"{where}: the forest lacks its array {e}") from None
        m = a["feature"].shape[0]
        ok = (a["threshold"].shape == (m,) and a["left"].shape == (m,) and a["right"].shape == (m,)
              and a["value"].ndim == 2 and a["value"].shape[0] == m and a["roots"].ndim == 1
              and a["n_features"].size == 1)
        nf = int(a["n_features"].reshape(-1)[0]) if a["n_features"].size == 1 else -1
        inner = a["feature"] >= 0
        at = np.arange(m)[inner]  # children come after their parent (as scikit-learn numbers them): no cycle
        ok = ok and bool(((a["left"][inner] > at) & (a["left"][inner] < m) & (a["right"][inner] > at)
                          & (a["right"][inner] < m) & (a["feature"][inner] < nf)).all())
        ok = ok and bool(((a["roots"] >= 0) & (a["roots"] < m)).all())
        if not ok:
            raise InputError(f"{where}: the forest's arrays do not fit together")
        return cls(a["feature"].astype(np.int32), a["threshold"].astype(np.float64), a["left"].astype(np.int32),
                   a["right"].astype(np.int32), a["value"].astype(np.float32), a["roots"].astype(np.int32), nf)
