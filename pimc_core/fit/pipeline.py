"""The steps of training a PIMC pixel model, one function each.

``sample → normalise → build the network → pretrain → choose the classifier's inputs →
fine-tune → forecast head → model file``. :func:`pimc_core.fit.fit` (``pimc fit``) runs them in
that order on one stack; ``python -m training pretrain|finetune|evaluate|forecast`` and
``python -m training report`` compose the same steps with their own data handling and
evaluation, so every workflow trains with one piece of code:

* :func:`check_stack`: the stack has the dates and bands a series model needs;
  :func:`check_label_classes`: the labels hold the two classes a classifier needs at least;
* :class:`Sampler`: pixels and their series / patches (:func:`pimc_core.learn.sampling.sample_pixels`)
  as a ``data`` section (:class:`~pimc_core.fit.config.DataConfig`) asks;
* :func:`build_net`: a :class:`~pimc_core.models.pimc_net.PimcNet` for the samples, its
  normalisation computed from them;
* :func:`pretrain_encoders`, :func:`choose_inputs`, :func:`train_classifier`,
  :func:`train_forecast_head`: the training stages; :func:`train_forest` and :func:`self_train`:
  the classifier's forest member and the rounds of self-training on the scene's pixels;
* :func:`score`: classification metrics of a network on labelled samples;
* :func:`save_model`: the ``.pimc`` file.

**Reproducibility.** The training stages run on one CPU thread (:func:`training_threads`)
whatever torch's thread count: several of torch's CPU reductions (BatchNorm statistics, the
weight gradients of 1-D convolutions, matrix products with a long inner dimension) split their
sums by thread, so the rounding, and after a few hundred steps the weights, depend on the
number of threads. Measured on this project's 2-core VM with torch 2.13: a 1-thread and a
2-thread fit of the same stack and seed differed by up to 0.045 in a weight; MKL's strict
conditional-numerical-reproducibility mode (``MKL_CBWR=AUTO,STRICT``) and turning off oneDNN
made the matrix products and convolutions agree but not BatchNorm's statistics, so the model
still differed. With one training thread the weights depend on the seed only (on one CPU type,
torch build and device; CUDA kernels are not bitwise reproducible). Sampling and map inference
keep every thread (``pimc classify`` of one model at 1 and 2 threads: identical classes,
confidence and probabilities).

The cost, ``pimc fit`` with the default config on a 64 x 64 px, 24-date ``pimc sample-data`` stack
on the 2-core VM: idle (load ~0.3), 70 s with training on 2 threads, 116 s on one; under load
(load average 1.3-2.7) 422 s on 2 threads against 114 s on one, because OpenMP threads wait for
each other on a busy machine (the old ``threads: 0`` default picked one thread there anyway).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from pimc_core.errors import ConfigError, InputError
from pimc_core.fit.config import DataConfig, ForecastConfig
from pimc_core.learn import pretrain as pretraining
from pimc_core.learn import sampling
from pimc_core.learn.ensemble import EnsembleConfig
from pimc_core.learn.finetune import FinetuneConfig, classification_metrics, finetune_classifier, predict_proba
from pimc_core.learn.forecast import forecast_plan, sample_windows, train_forecaster
from pimc_core.learn.pretrain import PretrainConfig

__all__ = [
    "MIN_DATES",
    "TRAINING_THREADS",
    "Sampler",
    "build_net",
    "check_label_classes",
    "check_stack",
    "choose_inputs",
    "plan_forecast",
    "pretrain_encoders",
    "save_model",
    "score",
    "train_classifier",
    "train_forecast_head",
    "training_threads",
]

#: Fewest dates of a series model: a recurrence plot of 1 or 2 dates (1 x 1, 2 x 2) says
#: nothing about a series, and a forecast needs at least 2 inputs and 1 step to predict.
MIN_DATES = 3

#: CPU threads of the training stages (see the module docstring).
TRAINING_THREADS = 1

Log = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


# ============================================================================ threads
@contextlib.contextmanager
def training_threads(device: Any = None) -> Iterator[None]:
    """Within the block torch uses :data:`TRAINING_THREADS` CPU threads (on a CPU device), then
    the thread count it had: the weights trained inside do not depend on the machine's thread
    count or load."""
    import torch

    if device is not None and getattr(device, "type", str(device)) != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(TRAINING_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ============================================================================ data
def check_stack(ts: Any, data: DataConfig) -> None:
    """Refuse a stack a series model cannot be trained on.

    Args:
        ts: a :class:`~pimc_core.io.timeseries.TimeSeries`.
        data: the (resolved) ``data`` section.

    Raises:
        InputError: fewer than :data:`MIN_DATES` dates. ConfigError: a date grid of fewer.
        BandError: a band the indices or the patches need is missing.
    """
    from pimc_core.series.composites import stack_reference
    from pimc_core.series.indices import required_bands

    if len(ts) < MIN_DATES:
        raise InputError(f"{ts.source}: {len(ts)} date{'s' if len(ts) != 1 else ''}; a series model needs at least "
                         f"{MIN_DATES} dates (its recurrence plots are dates x dates)")
    if data.dates == "grid" and data.grid_size() < MIN_DATES:
        raise ConfigError(f"data.n_dates: a grid of {data.grid_size()} dates; a series model needs at least "
                          f"{MIN_DATES} dates")
    ts.require_bands(required_bands(data.indices))
    if data.patch_size and stack_reference(data.reference) > 0:
        ts.require_bands(tuple(data.patch_bands) or tuple(ts.band_names))


def check_label_classes(counts: Mapping[int, int], where: str) -> None:
    """Refuse labels a classifier cannot be trained on: labelled pixels (``counts``: class id →
    pixels) of fewer than two classes (a one-class classifier would give that class everywhere).

    Raises:
        InputError: naming ``where`` (the label file) and the one class.
    """
    if len(counts) < 2:
        what = f"of class {next(iter(counts))} only" if counts else "of no class"
        raise InputError(f"{where}: labelled pixels {what}; a classifier needs at least 2 classes "
                         "(without labels the model is label-free: embeddings, clusters, forecast)")


@dataclass
class Sampler:
    """How pixels are drawn: a ``data`` section turned into :func:`sample_pixels` arguments.

    Attributes:
        data: the (resolved) ``data`` section.
        patch_bands: the bands patches are cut from (the stack's own bands for composites of
            the stack, its optical ones for an optical source with ``--sar``; the configured
            ones or None, all, for a reference raster).
        progress: passed on to :func:`~pimc_core.learn.sampling.sample_pixels`.
    """

    data: DataConfig
    patch_bands: tuple[str, ...] | None
    progress: Any = False

    @classmethod
    def for_stack(cls, data: DataConfig, band_names: Sequence[str], progress: Any = False) -> "Sampler":
        """The sampler of stacks with bands ``band_names``."""
        from pimc_core.io.sensors import RADAR_BANDS
        from pimc_core.series.composites import stack_reference

        if stack_reference(data.reference) > 0:  # patches from composites of the stack itself
            optical = tuple(b for b in band_names if b not in RADAR_BANDS)  # a radar source alone: its own bands
            bands: tuple[str, ...] | None = tuple(data.patch_bands) or optical or tuple(band_names)
        else:
            bands = tuple(data.patch_bands) or None
        return cls(data, bands, progress)

    def draw(self, ts: Any, n: int | None = None, *, seed: int, labels: Any = None, per_class: int | None = None,
             mask: np.ndarray | None = None, target_dates: Sequence[Any] | None = None) -> sampling.PixelSamples:
        """Pixels of ``ts``: ``n`` at random (within ``mask``, (H, W) bool) or up to ``per_class`` per
        class of ``labels``; series resampled onto ``target_dates`` (None: the ``data`` section's
        dates: a grid, or the stack's own)."""
        d = self.data
        target = d.target_dates(ts.dates[0]) if target_dates is None else target_dates
        return sampling.sample_pixels(
            ts, n, labels=labels, per_class=per_class, mask=mask, seed=seed, indices=d.indices,
            min_valid=d.min_valid, target_dates=target, patch_size=d.patch_size, patch_bands=self.patch_bands,
            reference=d.reference, block=d.block, progress=self.progress)


# ============================================================================ network
def build_net(model: Mapping[str, Any], data: DataConfig, samples: Any, *, seed: int, n_classes: int = 0,
              forecast: tuple[int, int] | None = None, forecast_index: str = "ndvi",
              normalisation: Mapping[str, Any] | None = None, where: str | None = None):
    """A :class:`PimcNet` for series like ``samples`` (initialised from ``seed``).

    Args:
        model: the ``model`` section (:class:`PimcModelConfig` fields); without ``rp``,
            recurrence plots of series longer than 16 dates are resized to 16 x 16; with optical
            and radar indices, ``radar_modality`` is on unless the section says otherwise.
        data: the ``data`` section (indices, patch size).
        samples: :class:`~pimc_core.learn.sampling.PixelSamples` with (N, C, T) series and
            (N, B, k, k) patches; T and the patch bands size the network.
        n_classes: classifier outputs (0: no classifier).
        forecast: ``(L, h)`` of a forecast head (None: none).
        normalisation: the input normalisation (default: computed from ``samples``).
        where: prefix of a model configuration error (e.g. ``fit config model``).
    """
    import torch

    from pimc_core.models.pimc_net import PimcModelConfig, PimcNet, compute_normalisation
    from pimc_core.series.radar import RADAR_INDICES

    T = samples.n_dates
    mdict = dict(model)
    mdict.setdefault("rp", {"size": 16} if T > 16 else {})
    radar = [i for i in data.indices if i in RADAR_INDICES]
    if radar and len(radar) < len(data.indices):  # optical and radar series (--sar): a radar modality
        mdict.setdefault("radar_modality", True)
    try:
        mcfg = PimcModelConfig.from_dict({
            **mdict, "indices": data.indices, "n_dates": T,
            "patch_bands": samples.patch_bands if data.patch_size else (),
            "patch_size": data.patch_size or 1, "n_classes": int(n_classes),
            "forecast_horizon": forecast[1] if forecast else 0, "forecast_input": forecast[0] if forecast else 0,
            "forecast_index": forecast_index,
        })
    except ConfigError as e:
        if where is None:
            raise
        raise ConfigError(f"{where}: {e}") from None
    torch.manual_seed(seed)
    net = PimcNet(mcfg)
    net.set_normalisation(compute_normalisation(samples.series, samples.patches) if normalisation is None
                          else normalisation)
    return net


# ============================================================================ training stages
def pretrain_encoders(net, samples: Any, cfg: PretrainConfig, *, seed: int, device: Any, checkpoint_dir: Any = None,
                      progress: Any = False, log: Log | None = None):
    """Self-supervised pretraining of ``net``'s encoders on ``samples`` (in place; one thread).

    The batch is at most the number of samples. Returns the
    :class:`~pimc_core.learn.pretrain.PretrainResult`.
    """
    if len(samples) < 2:
        raise InputError(f"pretraining needs at least 2 pixels with enough valid observations; got {len(samples)} "
                         "(raise data.pretrain_samples, or pretrain.steps=0 to skip pretraining)")
    pcfg = dataclasses.replace(cfg, seed=seed, batch_size=min(cfg.batch_size, len(samples)))
    with training_threads(device):
        return pretraining.pretrain(net, samples.series, samples.patches, pcfg, checkpoint_dir=checkpoint_dir,
                                    device=device, progress=progress, log=log)


def choose_inputs(net, samples: Any, regions: np.ndarray, class_ids: Sequence[int], cfg: FinetuneConfig,
                  setting: str, *, device: Any, progress: Any = False, log: Log = _quiet):
    """What the classifier reads: ``setting`` (``all`` / ``temporal``), or for ``auto`` the better
    of the two on labelled regions held out from a trial fine-tuning of a copy of ``net``.

    Args:
        samples: labelled samples; regions: (N,) their region ids (connected parcels).
        cfg: the fine-tuning recipe (seeded) the classifier will get.

    Returns:
        :class:`~pimc_core.learn.input_selection.InputChoice`.
    """
    from pimc_core.learn.input_selection import InputChoice, choose_classifier_inputs

    if setting == "auto":
        with training_threads(device):
            choice = choose_classifier_inputs(net, samples.series, samples.patches, samples.labels, regions, class_ids,
                                              cfg, device=device, progress=progress)
    else:
        choice = InputChoice.configured(setting)
    log(f"classifier inputs: {choice.inputs} ({choice.reason})")
    return choice


def train_classifier(net, samples: Any, class_ids: Sequence[int], cfg: FinetuneConfig, *, device: Any,
                     patches: bool = True, progress: Any = False) -> dict[str, Any]:
    """Fine-tune ``net``'s classifier (and encoders) on labelled ``samples`` (in place; one thread).

    ``patches=False`` trains without the image patch. Returns the training summary.
    """
    with training_threads(device):
        return finetune_classifier(net, samples.series, samples.patches if patches else None, samples.labels,
                                   class_ids, cfg, device=device, progress=progress)


def plan_forecast(n_dates: int, cfg: ForecastConfig, indices: Sequence[str]) -> tuple[int, int] | None:
    """``(L, h)`` of the forecast head of a fit, or None (disabled, under 8 dates, index not sampled)."""
    from pimc_core.series.indices import INDICES

    if cfg.enabled and cfg.index not in INDICES:
        raise ConfigError(f"forecast.index: unknown index {cfg.index!r} (known: {', '.join(INDICES)})")
    if cfg.enabled and n_dates >= 8 and cfg.index in indices:
        return forecast_plan(n_dates, cfg.horizon or None, cfg.input_len or None)
    return None


def train_forecast_head(net, ts: Any, samples: Any, plan: tuple[int, int], cfg: ForecastConfig, data: DataConfig, *,
                        seed: int, device: Any, progress: Any = False) -> dict[str, Any]:
    """Train the forecast head (one thread) on causal windows of the (unlabelled) ``samples`` of
    ``ts``: inputs gap-filled only from the observations up to their own origin, as a map's input
    is (:func:`pimc_core.learn.forecast.sample_windows`)."""
    L, h = plan
    ci = list(data.indices).index(cfg.index)
    wins = sample_windows(ts, samples, L, h, ci, max_windows=cfg.max_windows or None,
                          min_valid=data.min_valid, block=data.block)
    with training_threads(device):
        summary = train_forecaster(net, wins, dataclasses.replace(cfg.finetune, seed=seed),
                                   device=device, progress=progress)
    summary.update({"input_len": L, "horizon": h})
    return summary


# ============================================================================ evaluation and output
def classifier_proba(net, samples: Any, *, device: Any, modalities: Sequence[str] | None = None) -> np.ndarray:
    """(N, K) probabilities of ``net``'s classifier on ``samples``, reading ``modalities`` (None:
    all; the patch is given only with ``patch``)."""
    use_patch = modalities is None or "patch" in modalities
    return predict_proba(net, samples.series, samples.patches if use_patch else None, device=device)


def train_forest(net, labelled: Any, scene: Any, class_ids: Sequence[int], cfg: EnsembleConfig, *, seed: int,
                 device: Any, modalities: Sequence[str] | None = None, label_map: np.ndarray | None = None,
                 teacher: Any = None):
    """The forest member of the classifier ensemble (:mod:`pimc_core.learn.ensemble`): trained on
    ``labelled`` and, with self-training, on confident pixels of ``scene``. Returns ``(forest,
    summary, pseudo)`` (:func:`~pimc_core.learn.ensemble.train_forest_member`)."""
    from pimc_core.learn.ensemble import train_forest_member

    with training_threads(device):
        return train_forest_member(lambda s: classifier_proba(net, s, device=device, modalities=modalities),
                                   labelled, scene, class_ids, cfg, seed=seed, labelled_at=label_map,
                                   teacher=teacher)


def self_train(net, labelled: Any, scene: Any, class_ids: Sequence[int], cfg: EnsembleConfig, finetune: Any, *,
               seed: int, device: Any, modalities: Sequence[str] | None = None, label_map: np.ndarray | None = None,
               progress: Any = False):
    """The forest member and the network's rounds on the scene's pseudo-labels: ``(forest,
    summary)``; ``net`` is fine-tuned in place. Round 1 draws pseudo-labels from ``net`` and a
    forest on the labels, retrains the forest on them and fine-tunes ``net`` on the labelled and
    pseudo-labelled pixels; each further round (``cfg.network_rounds``) draws them afresh from
    the network and the forest of the round before."""
    forest, summary, pseudo = train_forest(net, labelled, scene, class_ids, cfg, seed=seed, device=device,
                                           modalities=modalities, label_map=label_map)
    for r in range(cfg.network_rounds if pseudo is not None else 0):
        if r:
            later = train_forest(net, labelled, scene, class_ids, cfg, seed=seed, device=device,
                                 modalities=modalities, label_map=label_map, teacher=forest)
            if later[2] is None:  # no confident pixel left: the round before's forest stays
                break
            forest, summary, pseudo = later
        train_classifier(net, sampling.PixelSamples.concat([labelled, pseudo]), class_ids, finetune, device=device,
                         progress=progress)
        summary["rounds"] = r + 1
    return forest, summary


def score(net, samples: Any, class_ids: Sequence[int], *, device: Any, modalities: Sequence[str] | None = None,
          forest: Any = None, forest_weight: float = 0.0) -> dict[str, Any]:
    """Classification metrics of ``net`` (with its ``forest`` member at ``forest_weight``) on
    labelled ``samples``, reading ``modalities`` (None: all; the patch is given only with ``patch``)."""
    prob = classifier_proba(net, samples, device=device, modalities=modalities)
    if forest is not None:
        prob = forest.mix(prob, samples.series, forest_weight)
    return classification_metrics(samples.labels, np.asarray(class_ids)[prob.argmax(1)], class_ids)


def save_model(path: str | Path, net, data: DataConfig, samples: Any, training: Mapping[str, Any],
               classes: Sequence[Mapping[str, Any]] | None = None, forest: Any = None) -> Path:
    """Write ``net`` (moved to the CPU) as a ``.pimc`` model file.

    Args:
        data: the resolved ``data`` section (dates mode, ``min_valid``).
        samples: the training samples (their dates and patch reference are recorded).
        training: the ``training`` record of the metadata.
        classes: the class table (None / empty: no classifier).
        forest: the classifier's forest member (``training["ensemble"]`` holds its weight), or None.
    """
    from pimc_core.models.pixel_model import save_pixel_model

    return save_pixel_model(path, net.to("cpu"), classes=classes, dates=data.date_spec(), training_dates=samples.dates,
                            min_valid=data.min_valid, patch_reference=samples.reference or "median", training=training,
                            forest=forest)
