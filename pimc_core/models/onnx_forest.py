"""The forest member of a classifier ensemble as ONNX nodes, so an exported file maps as PIMC does.

:func:`forest_nodes` turns an :class:`~pimc_core.models.forest.ArrayForest` into one
``TreeEnsembleClassifier`` node of the ONNX-ML operator set (domain ``ai.onnx.ml``, version
:data:`ML_OPSET`) that reads the graph's ``series`` input flattened to ``(N, C * T)`` (the
forest's features, :func:`~pimc_core.models.forest.series_features`), and the nodes that mix
its class probabilities with the network's: ``(1 - w) * network + w * forest``, as
:meth:`ArrayForest.mix` does. ONNX Runtime implements the operator; any ONNX-ML runtime can
run it.

Two details keep the file's predictions those of :meth:`ArrayForest.predict_proba`:

* thresholds: scikit-learn compares float32 features with float64 thresholds; the operator's
  thresholds are float32, so each is rounded *down* to the largest float32 not above it, which
  sends every float32 feature the same way (``x <= t`` ⟺ ``x <= floor32(t)`` for float32 ``x``);
* leaves: each leaf adds its class distribution divided by the number of trees (the operator
  sums over trees, ``post_transform`` ``NONE``); zero shares are left out, except that every
  class appears once, so that the operator returns all K columns;
* two classes: ONNX Runtime treats a two-class ensemble as a binary one and derives one
  column from the other (a pixel whose leaves all give class 1 zero came out as −1 / 1), so
  below three classes the node gets empty extra classes and their columns are sliced off.

Checked against :meth:`ArrayForest.predict_proba` in ``tests/test_onnx_forest.py``. Written here
rather than with a converter (skl2onnx) because the forest is stored as arrays, not as a
scikit-learn object, and the node takes a few lines of ``onnx.helper``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pimc_core.models.forest import ArrayForest

__all__ = ["ML_OPSET", "floor_float32", "forest_nodes"]

#: Version of the ``ai.onnx.ml`` operator set the forest node is written in.
ML_OPSET = 3


def floor_float32(t: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 of ``t``: ``(M,)`` float32."""
    t = np.asarray(t, np.float64)
    f = t.astype(np.float32)
    up = f.astype(np.float64) > t
    f[up] = np.nextafter(f[up], np.float32(-np.inf))
    return f


def _tree_attributes(forest: ArrayForest, n_out: int) -> dict[str, Any]:
    """The ``TreeEnsembleClassifier`` attributes of ``forest`` (nodes numbered within each tree)
    with ``n_out`` >= K output classes (those beyond K always 0)."""
    m = forest.feature.shape[0]
    ends = np.append(forest.roots[1:], m)
    tree = np.repeat(np.arange(forest.n_trees), ends - forest.roots)  # (M,) the tree of every node
    local = np.arange(m) - forest.roots[tree]  # node ids within their tree
    leaf = forest.feature < 0
    inner = ~leaf
    left = np.where(inner, forest.left - forest.roots[tree], 0)
    right = np.where(inner, forest.right - forest.roots[tree], 0)
    share = forest.value[leaf] / max(forest.n_trees, 1)  # (leaves, K)
    li, ci = np.nonzero(share)
    li, ci = list(li), list(ci)
    missing = sorted(set(range(n_out)) - set(ci))
    li += [0] * len(missing)  # every class once: the operator's output has K columns
    ci += missing
    leaf_at = np.flatnonzero(leaf)[np.asarray(li, np.int64)]
    share = np.pad(share, ((0, 0), (0, n_out - forest.n_classes)))
    return {
        "nodes_treeids": tree.tolist(),
        "nodes_nodeids": local.tolist(),
        "nodes_featureids": np.where(inner, forest.feature, 0).tolist(),
        "nodes_values": np.where(inner, floor_float32(forest.threshold), 0.0).astype(np.float32).tolist(),
        "nodes_modes": ["LEAF" if x else "BRANCH_LEQ" for x in leaf],
        "nodes_truenodeids": left.tolist(),
        "nodes_falsenodeids": right.tolist(),
        "class_treeids": tree[leaf_at].tolist(),
        "class_nodeids": local[leaf_at].tolist(),
        "class_ids": [int(c) for c in ci],
        "class_weights": share[np.asarray(li, np.int64), np.asarray(ci, np.int64)].astype(np.float64).tolist(),
        "classlabels_int64s": list(range(n_out)),
        "post_transform": "NONE",
    }


def forest_nodes(forest: ArrayForest, weight: float, series: str, network: str, out: str,
                 gate: str | None = None) -> tuple[list, list]:
    """ONNX nodes and initializers: ``out`` = ``(1 - weight) * network + weight * forest(series)``.

    Args:
        forest: the ensemble's forest (F = C * T features, K classes).
        weight: the forest's share, in [0, 1].
        series: name of the ``(N, C, T)`` float32 input the forest reads.
        network: name of the network's ``(N, K)`` float32 probabilities.
        out: name of the mixed ``(N, K)`` probabilities.
        gate: name of an ``(N, 1)`` float32 tensor of 0 / 1 that turns the forest off (0) for a
            pixel (``weight * gate`` is its share there), or None.

    Returns:
        ``(nodes, initializers)`` to append to the graph; the graph must import ``ai.onnx.ml``
        at :data:`ML_OPSET`.
    """
    from onnx import TensorProto, helper

    p = "pimc_forest_"
    k = forest.n_classes
    n_out = max(k, 3)  # see the module docstring: no binary special case
    nodes = [
        helper.make_node("Flatten", [series], [p + "features"], axis=1),
        helper.make_node("TreeEnsembleClassifier", [p + "features"], [p + "label", p + "scores"],
                         domain="ai.onnx.ml", name=p + "trees", **_tree_attributes(forest, n_out)),
        helper.make_node("Slice", [p + "scores", p + "start", p + "stop", p + "axis"], [p + "probabilities"]),
    ]
    share, keep = p + "weight", p + "keep"
    if gate is not None:  # per pixel: weight * gate and 1 - weight * gate
        nodes += [helper.make_node("Mul", [gate, p + "weight"], [p + "pixel_weight"]),
                  helper.make_node("Sub", [p + "one", p + "pixel_weight"], [p + "pixel_keep"])]
        share, keep = p + "pixel_weight", p + "pixel_keep"
    nodes += [
        helper.make_node("Mul", [network, keep], [p + "network_part"]),
        helper.make_node("Mul", [p + "probabilities", share], [p + "forest_part"]),
        helper.make_node("Add", [p + "network_part", p + "forest_part"], [out]),
    ]
    inits = [helper.make_tensor(p + "start", TensorProto.INT64, [1], [0]),
             helper.make_tensor(p + "stop", TensorProto.INT64, [1], [k]),
             helper.make_tensor(p + "axis", TensorProto.INT64, [1], [1]),
             helper.make_tensor(p + "one", TensorProto.FLOAT, [], [1.0]),
             helper.make_tensor(p + "keep", TensorProto.FLOAT, [], [1.0 - float(weight)]),
             helper.make_tensor(p + "weight", TensorProto.FLOAT, [], [float(weight)])]
    return nodes, inits
