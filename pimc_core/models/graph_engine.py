"""The engines that run a pixel model's map graph (:class:`~pimc_core.models.inference_net.InferenceNet`).

A :class:`PimcPixelModel` asks one of them for class probabilities and embeddings (the forecast
keeps the network's own path):

* ``torch`` (the default): the graph in ``torch.inference_mode``, on the CPU in chunks of
  :data:`CPU_CHUNK` pixels with channels-last image tensors (a chunk's activations stay in the
  core's cache: measured 1.5–2× faster than the network's 2048-pixel batches on a 2-core VM),
  on CUDA in whole batches under float16 autocast;
* ``onnx``: the same graph exported to ONNX (:func:`pimc_core.models.onnx_export.onnx_bytes`)
  and run by ONNX Runtime on the CPU, with as many intra-op threads as torch would use;
* ``auto``: ``onnx`` on a CPU when onnxruntime is installed, else ``torch`` (on a loaded 2-core
  VM neither was reliably faster: 0.9× to 1.4× the torch graph in two 1024² runs,
  docs/BENCHMARKS.md);
* ``reference``: none; the pixel model runs :class:`PimcNet` as it was trained (its recurrence
  plots from :mod:`pimc_core.series.recurrence`); what the others are checked against.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pimc_core.errors import ConfigError
from pimc_core.models.inference_net import InferenceNet
from pimc_core.models.pimc_net import PimcNet

__all__ = ["CPU_CHUNK", "ENGINES", "GraphEngine", "OnnxEngine", "TorchGraphEngine", "make_engine", "resolve_engine"]

#: What ``--engine`` accepts.
ENGINES: tuple[str, ...] = ("auto", "torch", "onnx", "reference")

#: Pixels per graph call on the CPU (cache-sized; see the module docstring).
CPU_CHUNK = 256


class GraphEngine:
    """Runs the map graph of one network for one set of outputs and inputs."""

    #: the outputs the graph gives, in its order (``probabilities`` and / or ``embeddings``)
    outputs: tuple[str, ...] = ()

    def run(self, x: np.ndarray, p: np.ndarray | None, m: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """(N, C, T) float32 series[, (N, B, k, k) float32 patches][, (N, 4) float32 modalities
        of a network with a radar modality] → ``{output: (N, width) float32}``."""
        raise NotImplementedError


class TorchGraphEngine(GraphEngine):
    """The graph in torch (CPU: channels-last chunks of :data:`CPU_CHUNK`; CUDA: autocast)."""

    def __init__(self, graph: InferenceNet, device: torch.device) -> None:
        self.graph = graph.to(device).eval()
        self.device = device
        self.outputs = graph.outputs
        if device.type == "cpu":
            self.graph.to(memory_format=torch.channels_last)
            self.graph.channels_last = True

    def run(self, x: np.ndarray, p: np.ndarray | None, m: np.ndarray | None = None) -> dict[str, np.ndarray]:
        from pimc_core.devices import autocast

        n = x.shape[0]
        chunk = CPU_CHUNK if self.device.type == "cpu" else max(1, n)
        parts: list[list[np.ndarray]] = [[] for _ in self.outputs]
        with torch.inference_mode(), autocast(self.device):
            for s in range(0, n, chunk):
                xb = torch.from_numpy(x[s:s + chunk]).to(self.device)
                pb = None if p is None else torch.from_numpy(p[s:s + chunk]).to(self.device)
                mb = None if m is None else torch.from_numpy(np.ascontiguousarray(m[s:s + chunk], np.float32)).to(self.device)
                for j, t in enumerate(self.graph(xb, pb, mb)):
                    parts[j].append(t.float().cpu().numpy())
        return {o: (np.concatenate(parts[j]) if parts[j] else np.zeros((0, 0), np.float32)).astype(np.float32, copy=False)
                for j, o in enumerate(self.outputs)}


class OnnxEngine(GraphEngine):
    """The graph exported to ONNX and run by ONNX Runtime (CPU)."""

    def __init__(self, graph: InferenceNet, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("--engine onnx needs the onnxruntime package (pip install onnxruntime)") from None
        from pimc_core.models.onnx_export import onnx_bytes

        self.outputs = graph.outputs
        self.with_patches = graph.with_patches
        self.with_modalities = graph.sar_encoder is not None
        self.n_modalities = len(graph.modalities)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(onnx_bytes(graph), opts, providers=["CPUExecutionProvider"])

    def run(self, x: np.ndarray, p: np.ndarray | None, m: np.ndarray | None = None) -> dict[str, np.ndarray]:
        feed = {"series": np.ascontiguousarray(x, np.float32)}
        if self.with_patches:
            feed["patches"] = np.ascontiguousarray(p, np.float32)
        if self.with_modalities:
            feed["modalities"] = np.ascontiguousarray(np.ones((x.shape[0], self.n_modalities)) if m is None else m, np.float32)
        res = self.session.run(list(self.outputs), feed)
        return {o: np.asarray(r, np.float32) for o, r in zip(self.outputs, res)}


def resolve_engine(kind: str, device: torch.device) -> str:
    """``auto`` → ``onnx`` on a CPU with onnxruntime installed, else ``torch``; other kinds as they are.

    Raises:
        ConfigError: an unknown kind.
    """
    if kind not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}; got {kind!r}")
    if kind != "auto":
        return kind
    import importlib.util

    return "onnx" if device.type == "cpu" and importlib.util.find_spec("onnxruntime") is not None else "torch"


def make_engine(kind: str, net: PimcNet, classify_modalities: Sequence[str], outputs: Sequence[str], patches: bool,
                device: torch.device, threads: int) -> GraphEngine:
    """The ``kind`` engine (``auto`` / ``torch`` / ``onnx``) of ``net``'s map graph for ``outputs``.

    Raises:
        ConfigError: an unknown kind; ``onnx`` on a CUDA device or without onnxruntime.
    """
    kind = resolve_engine(kind, device)
    graph = InferenceNet(net, classify_modalities, patches=patches, outputs=outputs)
    if kind == "torch":
        return TorchGraphEngine(graph, device)
    if kind == "onnx":
        if device.type != "cpu":
            raise ConfigError(f"--engine onnx runs on the CPU; got --device {device} (use --engine torch on a GPU)")
        return OnnxEngine(graph, threads)
    raise ConfigError(f"engine must be one of {', '.join(ENGINES)}; got {kind!r}")
