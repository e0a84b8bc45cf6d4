"""GPU benchmark: map pixels per second and pretraining pixel pairs per second on one device,
with mixed precision (float16 autocast on CUDA) and large batches; one row per run in
docs/BENCHMARKS.md with the device's name.

``python -m benchmarks.gpu`` (``make bench-gpu``; defaults: ``--device cuda``, a 1024² ×
30-date synthetic stack, batches of 65,536 pixels for maps and 4,096 pixel pairs for pretraining).
It runs anywhere: ``--device cpu --size 64 --batch 1024 --pairs-batch 64`` is what the test suite
runs, so the script is known to work before a GPU machine is at hand.

Three figures, each on the default PIMC architecture (speed depends on the architecture, not on
the weights: the network is freshly initialised, with a 30-date, 9-class, 9×9-patch shape like a
model ``pimc fit`` writes):

* **predict px/s**: ``PimcPixelModel.predict`` (classes) on random pixels in memory, one batch
  of ``--batch`` pixels per call, after a warm-up call: the compute alone (no reading);
* **classify px/s**: :func:`pimc_core.maps.engine.run_inference` of the stack (classes,
  confidence, uncertainty; ``--batch`` pixels per call, blocks of ``--block``): reading, indices,
  patches, prediction and writing, as ``pimc classify`` does it;
* **pretraining pairs/s**: optimisation steps of the contrastive loss
  (:meth:`PimcNet.contrastive_loss` + :class:`pimc_core.learn.loop.Optimiser`, mixed precision on
  CUDA) on batches of ``--pairs-batch`` (series, patch) pairs, after a warm-up step.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SECTION = "GPU: map pixels/s and pretraining pixel pairs/s (python -m benchmarks.gpu)"
_HEADER = ("| date | device | stack | predict px/s | classify px/s | pretraining pairs/s | batches (map / pairs) "
           "| commit |\n|---|---|---|---:|---:|---:|---|---|")


def _model(dates: list, device: str, folder: Path):
    """A freshly initialised default-architecture PIMC pixel model (9 classes, 9×9 patches) for
    a stack of ``dates`` (observed dates), loaded on ``device``."""
    import torch

    from pimc_core.models.pimc_config import PimcModelConfig
    from pimc_core.models.pimc_net import PimcNet
    from pimc_core.models.pixel_model import load_pixel_model, save_pixel_model

    torch.manual_seed(0)
    n_dates = len(dates)
    cfg = PimcModelConfig.from_dict({"n_dates": n_dates, "patch_bands": ["blue", "green", "red", "nir", "swir1"],
                                     "rp": {"size": 16}, "n_classes": 9, "forecast_horizon": 7,
                                     "forecast_input": n_dates})
    net = PimcNet(cfg).eval()
    classes = [{"id": i + 1, "name": f"class {i + 1}", "color": "#808080"} for i in range(9)]
    path = save_pixel_model(folder / "bench.pimc", net, classes=classes, training_dates=list(dates))
    return load_pixel_model(path, device=device), path


def _sync(device) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


def predict_rate(model, batch: int, repeats: int = 3) -> float:
    """Pixels per second of ``model.predict`` (classes) on ``batch`` random pixels."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(-0.2, 0.9, (batch, len(model.indices), model.n_dates)).astype(np.float32)
    p = rng.uniform(0.0, 0.5, (batch, model.patch_channels, model.patch_size, model.patch_size)).astype(np.float32)
    model.predict(x[: min(batch, 256)], p[: min(batch, 256)], outputs=("probabilities",))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        _sync(model.device)
        t0 = time.perf_counter()
        model.predict(x, p, outputs=("probabilities",))
        _sync(model.device)
        best = min(best, time.perf_counter() - t0)
    return batch / best


def pretrain_rate(model, batch: int, steps: int = 5) -> float:
    """Pixel pairs per second of contrastive pretraining steps (mixed precision on CUDA)."""
    import torch

    from pimc_core.learn.loop import Optimiser

    net = model.net.to(model.device).train()
    dev = model.device
    opt = Optimiser([{"params": list(net.parameters()), "lr": 1e-3}], total=steps + 1, warmup=0, min_lr_ratio=0.1,
                    weight_decay=0.0, amp=True, device=dev)
    g = torch.Generator().manual_seed(0)
    c, t, k = len(model.indices), model.n_dates, model.patch_size
    series = (torch.rand(batch, c, t, generator=g) * 0.8).to(dev)
    patches = (torch.rand(batch, model.patch_channels, k, k, generator=g) * 0.5).to(dev)

    def step() -> None:
        with opt.autocast():
            loss = net.contrastive_loss(series, patches)
        opt.step(loss)

    step()  # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(dev)
    net.eval()
    return batch * steps / (time.perf_counter() - t0)


def classify_rate(model_path: Path, device: str, manifest: Path, batch: int, block: int, folder: Path) -> float:
    """Pixels per second of :func:`run_inference` (classes, confidence, uncertainty) on a stack."""
    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.engine import run_inference
    from pimc_core.models.pixel_model import load_pixel_model

    ts = open_series(manifest)
    model = load_pixel_model(model_path, device=device)
    res = run_inference(ts, model, None, folder / "maps", products=("classes", "confidence", "uncertainty"),
                        batch_size=batch, block=block)
    return res.pixels_per_second


def run(device: str = "cuda", size: int = 1024, n_dates: int = 30, batch: int = 65536, pairs_batch: int = 4096,
        block: int = 1024) -> dict[str, Any]:
    """Measure the three figures on ``device``; a dict with the device in words and the rates."""
    import torch

    from pimc_core.datasets.synthetic import make_synthetic
    from pimc_core.devices import describe_device, resolve_device

    dev = resolve_device(device)
    with tempfile.TemporaryDirectory(prefix="pimc_gpu_bench_") as tmp:
        folder = Path(tmp)
        sample = make_synthetic(folder / "stack", size=size, n_dates=n_dates, seed=3)
        model, path = _model(sample.dates, str(dev), folder)
        res = {"device": describe_device(dev, torch.get_num_threads()), "size": size, "dates": n_dates,
               "batch": batch, "pairs_batch": pairs_batch, "block": block}
        res["predict_px_s"] = predict_rate(model, batch)
        res["classify_px_s"] = classify_rate(path, str(dev), sample.manifest, batch, block, folder)
        res["pretrain_pairs_s"] = pretrain_rate(model, pairs_batch)
    res["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return res


def row(res: dict[str, Any], commit: str = "") -> str:
    """The table row of one run."""
    return (f"| {res['date']} | {res['device']} | {res['size']}² × {res['dates']} dates | {res['predict_px_s']:,.0f} | "
            f"{res['classify_px_s']:,.0f} | {res['pretrain_pairs_s']:,.0f} | {res['batch']:,} / {res['pairs_batch']:,} "
            f"| {commit} |")


def _intro() -> str:
    """The section's first paragraphs: the module docstring from its second paragraph on, in Markdown."""
    return "\n\n".join(__doc__.split("\n\n")[1:]).strip().replace("``", "`")


def write_row(doc: Path, line: str) -> None:
    """Add ``line`` to the GPU section's table of ``doc`` (the section is made when missing); atomic."""
    from pimc_core.io.atomic import atomic_path

    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    head = f"## {SECTION}"
    if head not in text:
        text = text.rstrip("\n") + f"\n\n{head}\n\n{_intro()}\n\n{_HEADER}\n"
    start = text.index(head)
    nxt = text.find("\n## ", start + len(head))
    end = len(text) if nxt < 0 else nxt
    section = text[start:end].rstrip("\n") + "\n" + line + "\n"
    text = text[:start] + section + ("\n" + text[end:].lstrip("\n") if nxt >= 0 else "")
    with atomic_path(doc) as tmp:
        Path(tmp).write_text(text)


def main(argv: list[str] | None = None) -> None:
    import subprocess

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N, cpu or auto (default cuda)")
    ap.add_argument("--size", type=int, default=1024, help="side of the synthetic stack (px)")
    ap.add_argument("--dates", type=int, default=30)
    ap.add_argument("--batch", type=int, default=65536, help="pixels per model call")
    ap.add_argument("--pairs-batch", type=int, default=4096, help="pixel pairs per pretraining step")
    ap.add_argument("--block", type=int, default=1024, help="window side of the map run (px)")
    ap.add_argument("--out", default=str(REPO / "docs" / "BENCHMARKS.md"), help="file the row is added to ('-': none)")
    a = ap.parse_args(argv)
    res = run(a.device, a.size, a.dates, a.batch, a.pairs_batch, a.block)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    line = row(res, commit)
    print(line)
    if a.out != "-":
        write_row(Path(a.out), line)
        print(f"added to {a.out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    main()
