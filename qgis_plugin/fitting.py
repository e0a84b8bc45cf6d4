"""Training a model from QGIS: presets, progress and cancel for :func:`pimc_core.fit.fit`.

Used by the panel's *Train a model* section (a background ``QgsTask``) and by ``pimc:fit``.
No Qt and no qgis here: labels arrive as a file (a label raster on the series grid, or a
vector file of polygons or points that :func:`.labels.export_labels` wrote from a QGIS layer).

:func:`pimc_core.fit.fit` passes its ``progress`` argument on to each stage — sampling calls it
with a fraction, pretraining and fine-tuning with ``(step, steps, loss)`` — so one
:class:`FitProgress` object turns those calls into a single 0..1 fraction, and raises
:class:`~pimc_core.errors.Cancelled` from inside the training loop when the user cancels
(nothing is written then: the model file is saved, atomically, only at the very end).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .bootstrap import import_core


def _model(width: int, embed_dim: int, depth: int) -> dict[str, Any]:
    """Encoder sizes of a small preset (the recurrence-plot encoder always 2 deep)."""
    size = {"width": width, "embed_dim": embed_dim}
    return {"rp_encoder": {**size, "depth": 2}, "series_encoder": {**size, "depth": depth},
            "patch_encoder": {**size, "depth": depth}, "proj_dim": embed_dim}


def _preset(*, samples: int, per_class: int, model: dict[str, Any], steps: int, batch: int, warmup: int,
            epochs: int, max_steps: int, finetune_batch: int, forecast_epochs: int,
            forecast_batch: int) -> dict[str, Any]:
    """A smaller-than-default fit configuration: sample sizes, model, pretraining, fine-tuning, forecast."""
    return {
        "data": {"pretrain_samples": samples, "per_class": per_class, "patch_size": 5},
        "model": model,
        "pretrain": {"steps": steps, "batch_size": batch, "warmup_steps": warmup, "checkpoint_every": 0},
        "finetune": {"epochs": epochs, "max_steps": max_steps, "batch_size": finetune_batch},
        "forecast": {"finetune": {"epochs": forecast_epochs, "batch_size": forecast_batch}},
    }


#: Fit configurations by effort: a mapping of the ``pimc fit`` YAML sections (merged under a
#: user's YAML config, which wins). ``standard`` is :class:`pimc_core.fit.FitConfig`'s defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "standard": {},
    "quick": {**_preset(samples=2048, per_class=300, model=_model(8, 16, 2), steps=60, batch=128, warmup=6,
                        epochs=15, max_steps=120, finetune_batch=128, forecast_epochs=5, forecast_batch=256),
              "cv_folds": 3},
    "try-out": _preset(samples=256, per_class=12, model=_model(4, 8, 1), steps=3, batch=64, warmup=1,
                     epochs=2, max_steps=6, finetune_batch=32, forecast_epochs=1, forecast_batch=64),
}
#: What the presets are called in the panel and in ``pimc:fit`` (same names, same order).
PRESET_LABELS: dict[str, str] = {
    "standard": "standard (a few minutes for 256×256 px × 30 dates on 2 cores)",
    "quick": "quick (about a minute; a smaller model)",
    "try-out": "try-out (seconds; checks the workflow, the model is not useful)",
}
#: Former names still accepted (scripts, saved models of Processing): name → preset.
PRESET_ALIASES: dict[str, str] = {"smoke": "try-out"}


def preset_name(preset: str) -> str:
    """The preset's name (:data:`PRESETS`) for a name or a former one (:data:`PRESET_ALIASES`)."""
    return PRESET_ALIASES.get(preset, preset)


def default_model_file() -> Path:
    """Where ``pimc:fit`` saves the model when the user names no file: ``~/pimc_models/pimc_model.pimc``
    (kept, unlike a temporary file; shown as the parameter's default)."""
    return Path.home() / "pimc_models" / "pimc_model.pimc"


def fit_config(preset: str = "standard", config_path: str | os.PathLike | None = None,
               overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fit configuration mapping: ``preset``, then a YAML file, then ``overrides`` on top.

    Raises:
        ConfigError: unknown preset; an unreadable YAML (the core's message).
    """
    errors = import_core("pimc_core.errors")
    preset = preset_name(preset)
    if preset not in PRESETS:
        raise errors.ConfigError(f"unknown training preset '{preset}' (known: {', '.join(PRESETS)})")
    config = import_core("pimc_core.config")
    data = copy.deepcopy(PRESETS[preset])
    if config_path and str(config_path).strip():
        data = config.merge(data, config.load_yaml_config(Path(str(config_path).strip())))
    if overrides:
        data = config.merge(data, overrides)
    # validate now (unknown keys, bad values) rather than after sampling
    import_core("pimc_core.fit").FitConfig.from_dict(data)
    return data


class FitProgress:
    """One progress fraction over the stages of :func:`pimc_core.fit.fit`, with cancel.

    Call it as fit's ``progress`` (``f(fraction)`` from sampling, ``f(step, steps, loss)`` from
    the training loops) and as its ``log`` (``f(line)``). Each call first checks ``is_canceled``
    and raises :class:`~pimc_core.errors.Cancelled` when it says so.
    """

    SAMPLING = (0.0, 0.1)

    def __init__(self, report: Callable[[float], None] | None = None, is_canceled: Callable[[], bool] | None = None,
                 log: Callable[[str], None] | None = None, *, pretrain: bool = True, forecast: bool = True,
                 validation: int = 0) -> None:
        self.report = report
        self.is_canceled = is_canceled
        self.log_line = log
        # validation: the fine-tunings before the classifier's (one per spatial-CV fold)
        stages = ((["pretrain"] if pretrain else []) + ["validation"] * int(validation) + ["finetune"]
                  + (["forecast"] if forecast else []))
        weights = {"pretrain": 0.55, "validation": 0.2, "finetune": 0.25, "forecast": 0.08}
        scale = 0.88 / sum(weights[s] for s in stages)
        self.spans: list[tuple[str, float, float]] = []
        start = self.SAMPLING[1]
        for s in stages:
            self.spans.append((s, start, start + weights[s] * scale))
            start += weights[s] * scale
        self.fraction = 0.0
        self.stage = "sampling"
        self.lines: list[str] = []
        self._sample_pass = 0
        self._last_sample = -1.0
        self._loop = -1
        self._last_step: tuple[int, int] | None = None

    def check(self) -> None:
        if self.is_canceled is not None and self.is_canceled():
            errors = import_core("pimc_core.errors")
            raise errors.Cancelled("training cancelled by the user; no model file was written")

    def _set(self, f: float) -> None:
        f = min(1.0, max(self.fraction, float(f)))  # never backwards
        if f != self.fraction:
            self.fraction = f
            if self.report is not None:
                self.report(f)

    def __call__(self, *args) -> None:
        self.check()
        if len(args) == 1:  # sampling: two passes (unlabelled, labelled) of 0..1
            f = float(args[0])
            if f < self._last_sample:
                self._sample_pass += 1
            self._last_sample = f
            lo, hi = self.SAMPLING
            first = lo + (hi - lo) * 0.7
            self._set(lo + (first - lo) * f if self._sample_pass == 0 else first + (hi - first) * f)
        elif len(args) >= 2:  # a training loop: (step, steps[, loss])
            step, total = int(args[0]), max(1, int(args[1]))
            if self._last_step is None or step <= self._last_step[0] or total != self._last_step[1]:
                self._loop = min(self._loop + 1, len(self.spans) - 1)
            self._last_step = (step, total)
            name, lo, hi = self.spans[self._loop]
            self.stage = name
            self._set(lo + (hi - lo) * min(1.0, step / total))

    def log(self, line: str) -> None:
        self.check()
        self.lines.append(str(line))
        if self.log_line is not None:
            self.log_line(str(line))


@dataclass
class FitJob:
    """Everything one training run needs (made on the main thread, run anywhere).

    Attributes:
        labels: a label raster on the series grid (0 = unlabelled) or a vector file of
            polygons or points with a class field.
        out: the ``.pimc`` file to write (``.pimc`` is appended when missing).
        class_field: the class attribute of a vector label file.
        classes: a ``classes.json`` path (names and colours), or None.
        config: the fit configuration mapping (:func:`fit_config`).
        labels_name: what the user calls the labels (a layer's name) when ``labels`` is a file
            exported for this run: messages name it instead of the temporary file.
    """

    labels: str
    out: str
    class_field: str | None = None
    classes: str | None = None
    config: Mapping[str, Any] | None = None
    labels_name: str | None = None

    def name_labels(self, message: str) -> str:
        """``message`` with the exported labels file replaced by ``labels_name``."""
        if not self.labels_name:
            return message
        return message.replace(str(self.labels), f"layer '{self.labels_name}'")

    def out_path(self) -> Path:
        p = Path(str(self.out).strip()).expanduser()
        if p.suffix.lower() != ".pimc":
            p = p.with_name(p.name + ".pimc")
        return p


def run_fit(ts, job: FitJob, *, progress: Callable[[float], None] | None = None,
            cancel: Callable[[], bool] | None = None, log: Callable[[str], None] | None = None):
    """Run :func:`pimc_core.fit.fit` on the opened series; return its ``FitResult``.

    Raises:
        Cancelled: ``cancel()`` said so (no model file written). ConfigError / InputError /
        BandError: from the core, one line each.
    """
    errors = import_core("pimc_core.errors")
    fit_mod = import_core("pimc_core.fit")
    if not job.out or not str(job.out).strip():
        raise errors.ConfigError("choose where to save the model (.pimc file)")
    out = job.out_path()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise errors.InputError(f"{out.parent}: cannot create the folder ({e.strerror or e})") from None
    cfg = fit_mod.FitConfig.from_dict(dict(job.config or {}))
    if cfg.cv_jobs != 1:
        # inside QGIS the interpreter is the QGIS executable: worker processes would start QGIS, not
        # Python; the folds run here, where the panel's progress bar and cancel button reach them
        cfg = dataclasses.replace(cfg, cv_jobs=1)
    adapter = FitProgress(progress, cancel, log, pretrain=bool(cfg.pretrain.steps) and cfg.data.patch_size > 0,
                          forecast=bool(cfg.forecast.enabled),
                          validation=cfg.cv_folds or int(cfg.classifier_inputs == "auto"))
    kwargs: dict[str, Any] = {}
    if "cancel" in inspect.signature(fit_mod.fit).parameters:
        kwargs["cancel"] = cancel
    adapter.check()
    try:
        result = fit_mod.fit(ts, job.labels, out, classes=job.classes or None, config=cfg,
                             class_field=job.class_field or None, progress=adapter, log=adapter.log, **kwargs)
    except errors.Cancelled:
        raise
    except errors.PimcError as e:
        named = job.name_labels(str(e))
        if named == str(e):
            raise
        raise type(e)(named) from None
    if progress is not None:
        progress(1.0)
    return result


def held_out_text(training: Mapping[str, Any] | None) -> tuple[str, bool]:
    """``(text, estimated)``: a model's held-out accuracy from its ``training`` record, e.g.
    ``held-out accuracy 0.84 ± 0.03 (5 folds, 23 fields), macro-F1 0.81``, or why there is none."""
    training = training or {}
    if "spatial_cv" not in training:
        return "held-out accuracy: not estimated", False
    cv = training["spatial_cv"]
    text = import_core("pimc_core.learn.spatial_cv").describe(cv)
    return text, bool(cv and cv.get("confusion"))


def confusion_html(training: Mapping[str, Any] | None, classes) -> str:
    """The held-out confusion matrix of a ``training`` record as a small HTML table (rows the
    reference class, columns the predicted one, and each class's recall); '' without one."""
    cv = (training or {}).get("spatial_cv") or {}
    if not cv.get("confusion"):
        return ""
    from html import escape

    names = {str(c["id"]): str(c.get("name", c["id"])) for c in classes or []}
    ids = [str(c) for c in cv["class_ids"]]
    rec = cv.get("per_class_recall") or {}
    head = "".join(f"<th>{escape(c)}</th>" for c in ids)
    rows = "".join(
        f"<tr><th align='left'>{escape(c)} {escape(names.get(c, ''))}</th>"
        + "".join(f"<td align='right'>{v}</td>" for v in row)
        + f"<td align='right'>{f'{rec[c]:.2f}' if c in rec else '–'}</td></tr>"
        for c, row in zip(ids, cv["confusion"]))
    return (f"<b>{escape(held_out_text(training)[0])}</b><br>held-out pixels: rows the reference class, "
            f"columns the predicted one<table border='1' cellspacing='0' cellpadding='2'>"
            f"<tr><th></th>{head}<th>recall</th></tr>{rows}</table>")


__all__ = ["FitJob", "FitProgress", "PRESETS", "PRESET_ALIASES", "PRESET_LABELS", "confusion_html", "default_model_file",
           "fit_config", "held_out_text", "preset_name",
           "run_fit"]
