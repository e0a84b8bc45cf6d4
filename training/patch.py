"""``python -m training finetune --config training/configs/eurosat.yaml``: patch classification.

A config with ``task: patch`` fine-tunes PIMC's image-patch encoder with a classifier head on a
folder in EuroSAT's layout (one folder per class of 64 x 64 images; the 13-band GeoTIFFs or the
RGB JPEGs, :class:`pimc_core.datasets.EuroSATDataset`), split per class by ``seed``
(``dataset.train_fraction`` to train, the rest to test), and writes
``{out_dir}/patch_classifier.pimc`` (task ``patch_classification``) and
``{out_dir}/patch_finetune.json`` (overall accuracy, macro F1, kappa, per-class F1 and the
confusion matrix on the test images, rows = true class, columns = predicted, in ``classes`` order).

Sections (defaults in brackets): ``task`` (``patch``), ``name`` [``eurosat``], ``out_dir``
[``runs/{name}``], ``seed`` [0], ``device`` [``auto``], ``init`` [none: from scratch] a ``.pimc``
whose patch encoder (architecture, weights and bands) the run starts from; ``dataset``
(:class:`EuroSATSpec`); ``encoder`` (:class:`~pimc_core.models.encoders.EncoderConfig` fields of
a network trained from scratch; with ``init`` the model's); ``classifier_hidden`` [0];
``finetune`` (:class:`~pimc_core.learn.finetune.FinetuneConfig`: ``epochs``, ``batch_size``,
``lr``, ``encoder_lr_scale``, ``freeze``, ``augment.patch_flip`` / ``patch_noise``,
``label_smoothing``, ``max_steps``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from pimc_core import config as C
from pimc_core.config import COUNT, Checked, Interval, Real, StrOptions, declared, param
from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.learn.finetune import FinetuneConfig, classification_metrics
from training.output import log, write_json

__all__ = ["EuroSATSpec", "PatchRunConfig", "is_patch_config", "load_patch_config", "run_patch_finetune"]

_PATCH_ENCODER = {"width": 16, "depth": 2, "embed_dim": 64, "dropout": 0.1}  # as in a PIMC network


@declared
@dataclass
class EuroSATSpec(Checked):
    """The folder of a patch-classification run.

    Attributes:
        path: folder holding the class folders (or single folders above them).
        variant: ``ms`` (13-band GeoTIFF), ``rgb`` (JPEG) or ``auto`` (from the files).
        bands: canonical bands read (``red``, ``nir`` ... or ids ``B04``, ``B08``); empty: the
            ``init`` model's patch bands, else every band of the variant with a canonical name
            (``ms``: blue … swir2, not B01/B09/B10; ``rgb``: red, green, blue).
        classes: class names (label order); empty: the class folders present.
        train_fraction: share of each class's images used to train (the rest test).
        max_per_class: at most this many images of each class, drawn by ``seed`` (0: all).
    """

    path: str = param("", str)  # required: PatchRunConfig._check
    variant: str = param("auto", StrOptions({"auto", "ms", "rgb"}))
    bands: tuple[str, ...] = param((), tuple)
    classes: tuple[str, ...] = param((), tuple)
    train_fraction: float = param(0.8, Interval(Real, 0, 1, closed="neither"))
    max_per_class: int = param(0, COUNT)

    _config_name: ClassVar[str] = "dataset"


def _default_finetune() -> FinetuneConfig:
    return FinetuneConfig(epochs=15, batch_size=32, lr=2e-3, encoder_lr_scale=0.5, label_smoothing=0.0,
                          warmup_steps=10)


@declared
@dataclass
class PatchRunConfig(Checked):
    """A patch-classification run (see the module docstring)."""

    task: str = param("patch", StrOptions({"patch"}))
    name: str = param("eurosat", str)
    out_dir: str = param("runs/{name}", str)
    seed: int = param(0, COUNT)
    device: str = param("auto", str)
    init: str = param("", str)
    dataset: EuroSATSpec = param(EuroSATSpec, factory=EuroSATSpec)
    encoder: dict[str, Any] = param(dict, factory=lambda: dict(_PATCH_ENCODER))
    classifier_hidden: int = param(0, COUNT)
    finetune: FinetuneConfig = param(FinetuneConfig, factory=_default_finetune)

    _config_name: ClassVar[str] = "config"

    def _check(self) -> None:
        if not self.dataset.path:
            raise ConfigError("dataset.path: give the folder of class folders (EuroSAT layout)")

    @property
    def output(self) -> Path:
        """The run's output folder (``out_dir`` with ``{name}`` substituted)."""
        return Path(self.out_dir.replace("{name}", self.name))

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> PatchRunConfig:
        """The config of a mapping (YAML): partial sections keep their defaults, unknown keys named."""
        return C.config_from_mapping(cls, C.with_section_defaults(cls, data), "config")


def is_patch_config(path: str | None, overrides: Sequence[str] = ()) -> bool:
    """Whether the config (``extends`` resolved, with ``task=...`` overrides) says ``task: patch``."""
    task = (C.load_yaml_config(path) if path else {}).get("task")
    for o in overrides:
        if o.split("=", 1)[0].strip() == "task":
            task = o.split("=", 1)[1].strip()
    return task == "patch"


def load_patch_config(path: str, overrides: Sequence[str] = ()) -> PatchRunConfig:
    """Read a ``task: patch`` config, apply overrides, validate; ``dataset.path`` and ``init`` are
    resolved against the config's folder when they exist there.

    Raises:
        ConfigError: unknown keys (named), wrong types or values. InputError: missing file.
    """
    data = C.load_yaml_config(path)
    C.apply_overrides(data, overrides, PatchRunConfig)
    cfg = PatchRunConfig.from_mapping(data)
    base = Path(path).resolve().parent
    for obj, attr in ((cfg.dataset, "path"), (cfg, "init")):
        v = getattr(obj, attr)
        if v and not Path(v).is_absolute() and not Path(v).exists() and (base / v).exists():
            setattr(obj, attr, str(base / v))
    return cfg


def _open_dataset(spec: EuroSATSpec, init_bands: Sequence[str]) -> Any:
    """The dataset with the run's bands (canonical names only: the model file records them)."""
    from pimc_core.datasets.eurosat import EuroSATDataset
    from pimc_core.io.sensors import CANONICAL_BANDS

    classes = list(spec.classes) or None
    ds = EuroSATDataset(spec.path, spec.variant, classes=classes)
    if spec.bands:
        bands = list(spec.bands)
    elif init_bands:
        bands = list(init_bands)
    else:
        bands = [b for b in (CANONICAL_BANDS if ds.variant == "ms" else ("red", "green", "blue"))]
    ds = EuroSATDataset(ds.root, ds.variant, bands=bands, classes=classes)
    odd = [b for b in ds.band_names if b not in CANONICAL_BANDS]
    if odd:
        raise BandError(f"dataset.bands: {', '.join(odd)} has no canonical name; a patch model reads canonical "
                        f"bands ({', '.join(CANONICAL_BANDS)})")
    if init_bands and list(ds.band_names) != list(init_bands):
        raise BandError(f"dataset.bands {list(ds.band_names)} differ from the bands of init's patch encoder "
                        f"{list(init_bands)}; leave dataset.bands out to use the model's")
    counts = np.bincount(ds.labels, minlength=len(ds.classes))
    for cls, n in zip(ds.classes, counts):
        if n < 2:
            raise InputError(f"{ds.root / cls}: class {cls} has {n} image(s); each class needs at least 2 "
                             "(one to train, one to test)")
    return ds


def _split(ds: Any, spec: EuroSATSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test image indices: per class, at most ``max_per_class`` drawn by ``seed``, then split."""
    from pimc_core.datasets.eurosat import stratified_split

    idx = np.arange(len(ds))
    if spec.max_per_class:
        rng = np.random.default_rng(seed)
        idx = np.sort(np.concatenate([
            rng.permutation(np.flatnonzero(ds.labels == c))[:spec.max_per_class] for c in range(len(ds.classes))]))
    tr, te = stratified_split(ds.labels[idx], train=spec.train_fraction, seed=seed)
    return idx[tr], idx[te]


def run_patch_finetune(cfg: PatchRunConfig) -> dict[str, Any]:
    """Train and test a patch classifier; write ``patch_classifier.pimc`` and ``patch_finetune.json``
    in ``cfg.output``; returns the summary (the report)."""
    import torch

    from pimc_core.devices import resolve_device
    from pimc_core.fit.pipeline import training_threads
    from pimc_core.io.atomic import output_folder
    from pimc_core.learn import patch_classifier as pc
    from pimc_core.models.encoders import EncoderConfig

    t0 = time.perf_counter()
    output_folder(cfg.output)  # before any work
    init = Path(cfg.init) if cfg.init else None
    if init is not None and not init.exists():
        raise InputError(f"init: {init} not found")
    enc_cfg, state, init_bands = pc.pretrained_patch_encoder(init) if init else (None, None, [])
    ds = _open_dataset(cfg.dataset, init_bands)
    tr, te = _split(ds, cfg.dataset, cfg.seed)
    log(f"patch classification: {len(tr)} train / {len(te)} test images, {len(ds.classes)} classes, "
        f"bands {', '.join(ds.band_names)} ({ds.variant}); {'from ' + str(init) if init else 'from scratch'}")
    x_tr, y_tr = ds.load_all(indices=tr)
    x_te, y_te = ds.load_all(indices=te)
    if enc_cfg is None:
        try:
            enc_cfg = EncoderConfig.from_dict({**cfg.encoder, "in_channels": len(ds.bands)})
        except ConfigError as e:
            raise ConfigError(f"encoder: {e}") from None
    dev = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = pc.PatchClassifier(enc_cfg, len(ds.classes), cfg.classifier_hidden)
    if state is not None:
        try:
            model.patch_encoder.load_state_dict(state)
        except RuntimeError as e:
            raise InputError(f"{init}: its patch encoder does not load ({str(e).splitlines()[0][:200]})") from None
    model.set_normalisation(*pc.band_normalisation(x_tr))
    ft = dataclasses.replace(cfg.finetune, seed=cfg.seed)
    with training_threads(dev):
        hist = pc.train_patch_classifier(model, x_tr, y_tr, ft, device=dev, progress=True)
    pred = pc.predict_patches(model, x_te, device=dev).argmax(axis=1)
    test = classification_metrics(y_te, pred, list(range(len(ds.classes))))
    test["f1"] = {ds.classes[int(k)]: v for k, v in test["f1"].items()}
    test = {k: v for k, v in test.items() if k != "confusion"} | {"classes": list(ds.classes),
                                                                  "confusion": test["confusion"]}
    summary: dict[str, Any] = {
        "command": "finetune", "task": "patch", "init": str(init) if init else None,
        "dataset": {"path": str(ds.root), "variant": ds.variant, "bands": list(ds.band_names),
                    "classes": list(ds.classes), "train": len(tr), "test": len(te), "seed": cfg.seed},
        "training": hist, "test": test,
    }
    path = pc.save_patch_classifier(cfg.output / "patch_classifier.pimc", model, ds.band_names, ds.classes,
                                    {"workflow": "python -m training finetune (task: patch)",
                                     "config": dataclasses.asdict(cfg), "finetune": hist, "test": test})
    summary["model"] = str(path)
    summary["seconds_total"] = round(time.perf_counter() - t0, 1)
    write_json(cfg.output / "patch_finetune.json", summary)
    return summary


def summary_line(s: dict[str, Any]) -> str:
    """The one line ``finetune`` prints for a patch run."""
    t = s["test"]
    return (f"finetune (patch): {s['training']['steps']} steps on {s['dataset']['train']} images, "
            f"test accuracy {t['accuracy']}, macro F1 {t['macro_f1']} on {s['dataset']['test']}; model {s['model']}")
