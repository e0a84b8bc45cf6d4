"""The text head of a PIMC model: a word tokeniser, a small text encoder and a projection of the
pixel embeddings, aligned in one space so that a sentence finds the pixels it describes.

* :class:`Tokeniser`: lower-case words (letters, hyphenated words such as ``green-up``, and
  numbers such as ``0.8``); the vocabulary is built from the training captions and stored in the
  model file as a JSON list (``architecture.text_encoder.vocab``), never pickled. Words outside it
  map to ``<unk>`` and are reported, not an error.
* :class:`TextEncoder`: a word embedding, one residual 1-D convolution over the words (kernel
  3: it sees ``late april`` and ``peak ndvi 0.8`` as phrases), a mean over the words and a linear
  map into the joint space: (N, L) word ids → (N, E).
* :class:`PixelProjection`: a layer norm and a two-layer perceptron from the frozen PIMC pixel
  embedding into the joint space: (N, D) → (N, E).
* :class:`TextHead` holds the three and the learned InfoNCE temperature; :func:`save_text_model`
  writes it INTO a copy of the pixel model's ``.pimc`` (modules ``text_encoder``,
  ``text_projection``, ``text_loss``; the pixel model's weights and metadata unchanged), so one
  file carries the pixel embeddings and the text aligned with them, and still maps as before;
  :func:`load_text_head` reads it back without executing anything (safetensors + JSON).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pimc_core.errors import ConfigError, InputError
from pimc_core.models.contrastive import SymmetricInfoNCE

__all__ = ["TEXT_MODULES", "PixelProjection", "TextEncoder", "TextHead", "Tokeniser", "load_text_head",
           "save_text_model", "words"]

#: the modules of a model file that belong to the text head (a pixel model loads without them)
TEXT_MODULES: tuple[str, ...] = ("text_encoder", "text_projection", "text_loss")
PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"-?\d+(?:\.\d+)?|[a-z]+(?:-[a-z]+)*")


def words(text: str) -> list[str]:
    """The words of a text: lower case letters (``green-up`` is one word) and numbers (``0.8``)."""
    return _WORD.findall(str(text).lower().replace("_", " "))


class Tokeniser:
    """Words ↔ ids over a fixed vocabulary (id 0 ``<pad>``, id 1 ``<unk>``)."""

    def __init__(self, vocab: Sequence[str]) -> None:
        vocab = [str(w) for w in vocab]
        if vocab[:2] != [PAD, UNK] or len(set(vocab)) != len(vocab):
            raise InputError(f"text vocabulary must start with {PAD}, {UNK} and hold each word once")
        self.vocab = vocab
        self.ids = {w: i for i, w in enumerate(vocab)}

    @classmethod
    def build(cls, texts: Sequence[str], min_count: int = 1) -> "Tokeniser":
        """The vocabulary of ``texts``: every word seen ``min_count`` times, sorted."""
        counts: dict[str, int] = {}
        for t in texts:
            for w in words(t):
                counts[w] = counts.get(w, 0) + 1
        return cls([PAD, UNK] + sorted(w for w, c in counts.items() if c >= min_count))

    def __len__(self) -> int:
        return len(self.vocab)

    def unknown(self, text: str) -> list[str]:
        """The words of ``text`` outside the vocabulary, in order of appearance, once each."""
        return list(dict.fromkeys(w for w in words(text) if w not in self.ids))

    def encode(self, texts: Sequence[str], max_len: int = 32) -> np.ndarray:
        """(N,) texts → (N, L) int64 word ids (``<unk>`` for unknown words, 0-padded, L ≤ ``max_len``)."""
        rows = [[self.ids.get(w, 1) for w in words(t)][:max_len] or [1] for t in texts]
        out = np.zeros((len(rows), max(len(r) for r in rows) if rows else 1), np.int64)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out

    def decode(self, ids: np.ndarray) -> list[str]:
        """(N, L) word ids → N texts (padding dropped)."""
        return [" ".join(self.vocab[int(i)] for i in row if int(i) != 0) for row in np.asarray(ids)]


class TextEncoder(nn.Module):
    """Word ids → a vector of the joint space: embedding, a residual 1-D convolution, mean, linear.

    Args:
        vocab_size: V. dim: word vector size. out_dim: E, the joint space.
    """

    def __init__(self, vocab_size: int, dim: int = 64, out_dim: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, dim, 3, padding=1)
        self.out = nn.Linear(dim, out_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) int64 ids → (N, E)."""
        mask = (ids != 0).float().unsqueeze(-1)  # (N, L, 1)
        x = self.embed(ids)  # (N, L, dim)
        x = x + F.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        x = (x * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.out(x)


class PixelProjection(nn.Module):
    """(N, D) pixel embeddings → (N, E): layer norm, linear, GELU, linear."""

    def __init__(self, in_dim: int, hidden: int = 64, out_dim: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class TextHead(nn.Module):
    """The tokeniser, :class:`TextEncoder`, :class:`PixelProjection` and the InfoNCE loss.

    Args:
        tokeniser: the vocabulary. pixel_dim: D of the pixel model's embeddings.
        dim, hidden, out_dim: sizes (word vectors, projection's hidden layer, joint space E).
    """

    def __init__(self, tokeniser: Tokeniser, pixel_dim: int, dim: int = 64, hidden: int = 64, out_dim: int = 32) -> None:
        super().__init__()
        self.tokeniser = tokeniser
        self.sizes = {"pixel_dim": int(pixel_dim), "dim": int(dim), "hidden": int(hidden), "out_dim": int(out_dim)}
        self.text_encoder = TextEncoder(len(tokeniser), dim, out_dim)
        self.text_projection = PixelProjection(pixel_dim, hidden, out_dim)
        self.text_loss = SymmetricInfoNCE()

    @torch.no_grad()
    def text_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) texts → (N, E) float64 unit vectors of the joint space."""
        self.eval()
        z = self.text_encoder(torch.from_numpy(self.tokeniser.encode(texts)))
        return F.normalize(z, dim=1).double().numpy()

    @torch.no_grad()
    def pixel_vectors(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, D) pixel embeddings → (N, E) float32 vectors of the joint space (not normalised)."""
        self.eval()
        return self.text_projection(torch.from_numpy(np.asarray(embeddings, np.float32))).numpy()

    def architecture(self) -> dict[str, Any]:
        """The JSON that rebuilds the head (vocabulary included)."""
        return {"kind": "text", **self.sizes, "vocab": list(self.tokeniser.vocab)}


def save_text_model(path: str | os.PathLike, base: str | os.PathLike, head: TextHead,
                    training: Mapping[str, Any]) -> Path:
    """Write the pixel model ``base`` with ``head`` added (atomically) to ``path``.

    The weights and metadata of ``base`` are copied unchanged; the head's modules are added
    (:data:`TEXT_MODULES`), its architecture under ``architecture.text_encoder`` and ``training``
    under ``training.text``.

    Raises:
        InputError: ``base`` is not a PIMC model file, or cannot be written to ``path``.
    """
    from pimc_core.models.model_file import load_model, save_model

    weights, meta = load_model(base)
    weights = {k: v for k, v in weights.items() if k not in TEXT_MODULES}
    for name in TEXT_MODULES:
        weights[name] = getattr(head, name).state_dict()
    meta["architecture"] = {**meta.get("architecture", {}), "text_encoder": head.architecture()}
    meta["training"] = {**meta.get("training", {}), "text": dict(training)}
    meta["created"] = meta["pimc_version"] = None
    return save_model(path, weights, meta)


def load_text_head(path: str | os.PathLike) -> TextHead:
    """The text head of a model file written by :func:`save_text_model` (no code executed).

    Raises:
        InputError: not a model file, or one without a text head (run ``pimc text-fit``), or
            weights that do not fit its architecture.
    """
    from pimc_core.models.model_file import load_model

    weights, meta = load_model(path)
    arch = (meta.get("architecture") or {}).get("text_encoder")
    if not isinstance(arch, Mapping) or any(m not in weights for m in TEXT_MODULES):
        raise InputError(f"{path}: the model has no text head; add one with 'pimc text-fit SOURCE --model {Path(path).name} "
                         f"--out MODEL_text.pimc'")
    try:
        head = TextHead(Tokeniser(arch["vocab"]), int(arch["pixel_dim"]), int(arch["dim"]), int(arch["hidden"]),
                        int(arch["out_dim"]))
        for name in TEXT_MODULES:
            getattr(head, name).load_state_dict(dict(weights[name]))
    except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as e:
        raise InputError(f"{path}: the text head does not fit its architecture ({str(e).splitlines()[0][:200]})") from None
    return head.eval()
