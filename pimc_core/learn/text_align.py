"""Training the text head: captions written from each pixel's own facts, aligned with the frozen
PIMC pixel embeddings by the symmetric InfoNCE of :mod:`pimc_core.models.contrastive`.

Every step draws a batch of pixels, writes one fresh caption per pixel
(:func:`pimc_core.series.captions.pixel_caption`: a random paraphrase of its phenology, its
class name or description when it is labelled), encodes the captions with the
:class:`~pimc_core.models.text_encoder.TextEncoder` and the pixels' embeddings with the
:class:`~pimc_core.models.text_encoder.PixelProjection`, and pulls each pixel towards its own
caption and away from the others of the batch (CLIP). The pixel encoder itself is not trained.
The vocabulary is that of the captions of the training pixels (:meth:`Tokeniser.build`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np
import torch

from pimc_core.config import POSITIVE, POSITIVE_INT, Checked, Integral, Interval, declared, param
from pimc_core.errors import InputError
from pimc_core.models.text_encoder import TextHead, Tokeniser
from pimc_core.series.captions import class_captions, pixel_caption

__all__ = ["PixelFacts", "TextFitConfig", "fit_text_head"]


@dataclass
class PixelFacts:
    """What the captions of N pixels are written from.

    Attributes:
        embeddings: (N, D) float32 PIMC embeddings.
        metrics: ``{metric: (N,) float64}`` phenology metrics (days of year of ``year``; NaN: no season).
        level: (N,) mean index value over the dates.
        year: the year the days count from. index: the index of the metrics (``ndvi``).
        class_names: N class names (None: unlabelled).
        descriptions: class name → description.
        positions: (N, 2) raster rows and columns of the pixels, or None.
    """

    embeddings: np.ndarray
    metrics: dict[str, np.ndarray]
    level: np.ndarray
    year: int
    index: str = "ndvi"
    class_names: list[str | None] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)
    positions: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def caption(self, i: int, rng: np.random.Generator) -> str:
        """A random caption of pixel ``i``."""
        name = self.class_names[i] if self.class_names else None
        return pixel_caption({k: float(v[i]) for k, v in self.metrics.items()}, float(self.level[i]), self.year, rng,
                             self.index, name, self.descriptions.get(name) if name else None)


@declared
@dataclass
class TextFitConfig(Checked):
    """How the text head is trained.

    Attributes:
        epochs: passes over the sampled pixels. batch_size: pixels (and captions) per step.
        lr: Adam learning rate. dim: word vector size. hidden: the pixel projection's hidden
        layer. out_dim: size E of the joint space. seed: sampling, captions and initial weights.
        vocab_captions: captions per pixel drawn to build the vocabulary.
        distinct: keep one pixel per distinct caption of a batch (InfoNCE would push apart two
        pixels captioned alike, e.g. two fields of one class).
    """

    epochs: int = param(40, POSITIVE_INT)
    batch_size: int = param(256, Interval(Integral, 2, None, closed="left"))
    lr: float = param(3e-3, POSITIVE)
    dim: int = param(64, POSITIVE_INT)
    hidden: int = param(64, POSITIVE_INT)
    out_dim: int = param(32, POSITIVE_INT)
    seed: int = param(0, Interval(Integral, 0, None, closed="left"))
    vocab_captions: int = param(8, POSITIVE_INT)
    distinct: bool = param(True, "boolean")

    _config_name: ClassVar[str] = "text-fit"


def fit_text_head(facts: PixelFacts, config: TextFitConfig | None = None,
                  progress: Callable[[float], None] | None = None) -> tuple[TextHead, dict]:
    """Train a text head on the pixels of ``facts``.

    Returns:
        ``(head, summary)``: the trained :class:`TextHead` and a JSON summary (config, pixels,
        labelled pixels, vocabulary size, loss per epoch, seconds).

    Raises:
        InputError: fewer than two pixels.
    """
    cfg = config if config is not None else TextFitConfig()
    n = len(facts)
    if n < 2:
        raise InputError(f"text-fit: {n} pixel(s) sampled; the captions need at least 2")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as every training step of PIMC: the weights do not depend on the machine's load
    try:
        return _fit(facts, cfg, progress)
    finally:
        torch.set_num_threads(before)


def _fit(facts: PixelFacts, cfg: TextFitConfig, progress: Callable[[float], None] | None) -> tuple[TextHead, dict]:
    n = len(facts)
    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    texts = [facts.caption(i, rng) for i in range(n) for _ in range(cfg.vocab_captions)]
    for name in sorted({c for c in facts.class_names if c}):
        texts += class_captions(name, facts.descriptions.get(name))
    head = TextHead(Tokeniser.build(texts), facts.embeddings.shape[1], cfg.dim, cfg.hidden, cfg.out_dim)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    emb = torch.from_numpy(np.ascontiguousarray(facts.embeddings, np.float32))
    batch = min(cfg.batch_size, n)
    steps = max(1, n // batch)
    losses = []
    head.train()
    for epoch in range(cfg.epochs):
        order = rng.permutation(n)
        total = 0.0
        for s in range(steps):
            rows = order[s * batch:(s + 1) * batch]
            texts = [facts.caption(int(i), rng) for i in rows]
            if cfg.distinct:  # one pixel per caption: two pixels of one caption are no negatives of each other
                first = dict(zip(reversed(texts), reversed(range(len(texts)))))
                keep = np.sort(np.fromiter(first.values(), int))
                rows, texts = rows[keep], [texts[i] for i in keep]
            ids = torch.from_numpy(head.tokeniser.encode(texts))
            loss = head.text_loss(head.text_projection(emb[rows]), head.text_encoder(ids))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        losses.append(round(total / steps, 4))
        if progress is not None:
            progress((epoch + 1) / cfg.epochs)
    head.eval()
    labelled = sum(1 for c in facts.class_names if c)
    summary = {"config": dataclasses.asdict(cfg), "pixels": n, "labelled_pixels": labelled,
               "vocabulary": len(head.tokeniser) - 2, "losses": losses, "index": facts.index, "year": facts.year,
               "seconds": round(time.perf_counter() - t0, 1)}
    return head, summary
