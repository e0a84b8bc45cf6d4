"""A PIMC pixel model as an ONNX file: the map graph with its input normalisation, for other tools.

:func:`export_onnx` writes what ``pimc export MODEL.pimc --onnx OUT.onnx`` writes: the
:class:`~pimc_core.models.inference_net.InferenceNet` of the model (recurrence plots, encoders,
fusion, classifier and softmax in one graph; opset :data:`OPSET`, a dynamic batch axis ``N``)
and the model's metadata as ONNX ``metadata_props``.

The graph (see docs/API.md, "ONNX"):

* input ``series``: (N, C, T) float32, the pixel's gap-filled index series, channels in the
  order of ``pimc.indices`` (e.g. ndvi, evi, savi), T = ``pimc.n_dates`` dates (the model's
  date grid, or the stack's acquisition dates for an ``observed`` model); raw index values:
  the graph standardises them itself;
* input ``patches`` (only when ``pimc.patch_bands`` is not empty): (N, B, k, k) float32
  reflectance (0..1) of the bands ``pimc.patch_bands`` around each pixel, cut from the per-band
  median of the valid observations; rows / columns beyond the raster reflected back, any other
  NaN stands for the band's mean (the graph standardises and fills it);
* input ``modalities`` (only for a model with a radar modality): (N, 4) float32, which of
  ``pimc.modalities`` (``rp``, ``series``, ``patch``, ``sar``) each pixel has (1) or lacks (0):
  the optical source alone is ``1 1 1 0``, the radar source alone ``0 0 0 1`` (the absent
  source's channels of ``series`` are then ignored; give any finite values, e.g. the training
  means of ``pimc.normalisation``);
* outputs ``probabilities`` (N, K) (softmax over the classes of ``pimc.classes``, in that order)
  and ``embeddings`` (N, D) (the fused embedding).

A model whose classifier ensemble has a forest member (``pimc.forest_weight`` > 0) mixes the
forest's probabilities with the network's: the exported file holds the forest too, as an ONNX-ML
``TreeEnsembleClassifier`` node on ``series`` (:mod:`pimc_core.models.onnx_forest`), so its
``probabilities`` are those of ``pimc classify`` (``pimc.forest_in_graph`` = ``true``). PIMC's own
``--engine onnx`` runs the network's graph alone (:func:`onnx_bytes`) and mixes the forest in with
numpy, as the torch engine does.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from pimc_core.errors import ConfigError
from pimc_core.models.inference_net import InferenceNet

__all__ = ["OPSET", "export_onnx", "onnx_bytes", "onnx_metadata"]

#: The ONNX opset the graph is written in.
OPSET = 17


def onnx_bytes(graph: InferenceNet, opset: int = OPSET) -> bytes:
    """The ONNX serialisation of ``graph`` (TorchScript exporter, dynamic batch axis)."""
    graph = graph.eval()
    n = 2
    series = torch.zeros(n, graph.idx_mean.shape[0], graph.n_dates)
    args: tuple[Any, ...] = (series,)
    names = ["series"]
    if graph.with_patches:
        b = graph.band_mean.shape[0]
        k = int(graph.patch_size)
        args += (torch.zeros(n, b, k, k),)
        names.append("patches")
    if graph.sar_encoder is not None:  # a keyword argument, so that it also follows series alone
        args += ({"modalities": torch.ones(n, len(graph.modalities))},)
        names.append("modalities")
    axes = {name: {0: "N"} for name in names + list(graph.outputs)}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python-side shape checks
        torch.onnx.export(graph, args, buf, dynamo=False, opset_version=int(opset), input_names=names,
                          output_names=list(graph.outputs), dynamic_axes=axes, do_constant_folding=True)
    return buf.getvalue()


def _with_forest(proto: Any, model: Any) -> bool:
    """Add ``model``'s forest member to ``proto`` (the exported map graph) so that its output
    ``probabilities`` is the ensemble's; False (nothing changed) for a model without one."""
    from onnx import helper

    from pimc_core.models.onnx_forest import ML_OPSET, forest_nodes

    g = proto.graph
    if model.forest is None or model.forest_weight <= 0 or "probabilities" not in [o.name for o in g.output]:
        return False
    net_out = "pimc_network_probabilities"
    for node in g.node:
        node.output[:] = [net_out if o == "probabilities" else o for o in node.output]
    gate, gate_nodes, gate_inits = None, [], []
    if "modalities" in [i.name for i in g.input]:  # as pimc classify: the forest only where both sources are
        from onnx import TensorProto

        cols = [model.net.modalities.index(m) for m in ("rp", "series", "sar")]
        for j, c in enumerate(cols):
            gate_inits.append(helper.make_tensor(f"pimc_gate_col{j}", TensorProto.INT64, [1], [c]))
            gate_nodes.append(helper.make_node("Gather", ["modalities", f"pimc_gate_col{j}"], [f"pimc_gate_{j}"], axis=1))
        gate_nodes += [helper.make_node("Mul", ["pimc_gate_0", "pimc_gate_1"], ["pimc_gate_01"]),
                       helper.make_node("Mul", ["pimc_gate_01", "pimc_gate_2"], ["pimc_forest_gate"])]
        gate = "pimc_forest_gate"
    nodes, inits = forest_nodes(model.forest, model.forest_weight, "series", net_out, "probabilities", gate)
    g.node.extend(gate_nodes + nodes)
    g.initializer.extend(gate_inits + inits)
    proto.opset_import.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    return True


def onnx_metadata(model: Any, graph: InferenceNet, forest_in_graph: bool = False) -> dict[str, str]:
    """The ``metadata_props`` of an exported model: every value a string (JSON where not text)."""
    meta = dict(model.metadata)
    tr = dict(meta.get("training") or {})
    props = {
        "pimc.format": "pimc-onnx-1",
        "pimc.indices": json.dumps(list(model.indices)),
        "pimc.n_dates": str(model.n_dates),
        "pimc.dates": json.dumps(meta.get("dates") or {"mode": "observed"}),
        "pimc.training_dates": json.dumps(tr.get("dates") or []),
        "pimc.min_valid": str(model.min_valid),
        "pimc.patch_bands": json.dumps(list(model.net.cfg.patch_bands) if graph.with_patches else []),
        "pimc.patch_size": str(graph.patch_size if graph.with_patches else 0),
        "pimc.patch_reference": str(model.patch_reference),
        "pimc.classes": json.dumps(model.class_table),
        "pimc.classify_modalities": json.dumps(list(model.classify_modalities)),
        "pimc.modalities": json.dumps(list(graph.modalities)),
        "pimc.normalisation": json.dumps(meta.get("normalisation") or {}),
        "pimc.outputs": json.dumps(list(graph.outputs)),
        "pimc.forest_weight": str(model.forest_weight),
        "pimc.forest_in_graph": json.dumps(bool(forest_in_graph)),
        "pimc.metadata": json.dumps(meta, default=str),
    }
    return props


def export_onnx(model: Any, out: str | os.PathLike, *, opset: int = OPSET) -> Path:
    """Write ``model`` (a :class:`~pimc_core.models.pixel_model.PimcPixelModel`) as an ONNX file
    (atomic): its map graph with the normalisation, ``probabilities`` (when it classifies; with the
    forest member mixed in when the model has one) and ``embeddings``, patches as an input when it
    reads them; metadata as ``metadata_props``.

    Raises:
        ConfigError: an opset below 17, or a model whose recurrence plots the graph cannot compute.
    """
    import onnx

    from pimc_core.io.atomic import atomic_path, output_file

    if int(opset) < OPSET:
        raise ConfigError(f"--opset must be at least {OPSET}; got {opset}")
    out = output_file(out)
    outputs = ("probabilities", "embeddings") if model.net.classifier is not None else ("embeddings",)
    graph = InferenceNet(model.net, model.classify_modalities, patches=bool(model.patch_size), outputs=outputs)
    proto = onnx.load_from_string(onnx_bytes(graph, opset))
    proto.producer_name = "pimc"
    forest = _with_forest(proto, model)
    if forest:
        onnx.checker.check_model(proto)
    for key, value in onnx_metadata(model, graph, forest).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
    return out
