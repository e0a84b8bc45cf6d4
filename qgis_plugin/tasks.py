"""Background work in QGIS's task manager: map runs (:class:`MapTask`), suggested sample points
(:class:`SuggestTask`) and training (:class:`FitTask`).

A task's :meth:`~PimcTask.run` runs in a worker thread and never raises: a core error becomes
``task.error`` (its one line), anything else ``task.error`` plus ``task.details`` (the traceback,
written to the *PIMC* tab of the log). Progress goes to the task manager through
``setProgress``; the task manager's cancel button (or :meth:`QgsTask.cancel`) makes
``isCanceled()`` true, which the core checks between batches / training steps and answers
with :class:`~pimc_core.errors.Cancelled`.

:meth:`~PimcTask.finished` runs on the main thread: the map task adds its layers (a group
``PIMC <timestamp>``), the suggest task adds its points as a vector layer in edit mode (only the
``class`` field editable), the fit task hands the model file over; all report to the message bar
and the log, then call ``on_done(task)``. Nothing escapes these methods.

Python task objects must outlive the C++ task: they are kept in :data:`LIVE` until finished.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from qgis.core import QgsApplication, QgsMessageLog, QgsTask

from .bootstrap import MissingDependencyError, import_core
from .compat import MSG_CRITICAL, MSG_INFO, MSG_SUCCESS
from .fitting import FitJob, run_fit
from .mapping import SUGGEST_FILE, MapOutcome, MapRequest, RegionSpec, remove_tree, run_maps, run_suggest

LOG_TAG = "PIMC"
#: Tasks started and not finished yet (keeps their Python objects alive).
LIVE: set["PimcTask"] = set()
_CAN_CANCEL = getattr(QgsTask, "Flag", QgsTask).CanCancel


def remove_paths(paths: list[Path]) -> None:
    """Remove files and folders a run made for itself (exported labels), ignoring errors."""
    for p in paths:
        remove_tree(p) if p.is_dir() else p.unlink(missing_ok=True)


class PimcTask(QgsTask):
    """Common parts: error capture, messages, the live set, ``on_done``; ``temp_files`` (files made
    for the run, e.g. exported labels) are removed when it ends, whatever the outcome."""

    def __init__(self, description: str, *, iface=None, on_done: Callable[["PimcTask"], None] | None = None,
                 temp_files: list[str | os.PathLike] | None = None) -> None:
        super().__init__(description, _CAN_CANCEL)
        self.iface = iface
        self.on_done = on_done
        self.temp_files = [Path(p) for p in (temp_files or [])]
        self.error: str | None = None
        self.details: str | None = None
        self.cancelled = False
        self.succeeded = False
        self.done = False
        self.seconds = 0.0

    # ------------------------------------------------------------------ worker thread
    def run(self) -> bool:  # noqa: D401 (QGIS API)
        t0 = time.perf_counter()
        try:
            errors = import_core("pimc_core.errors")
        except MissingDependencyError as e:
            self.error = str(e)
            return False
        try:
            self.work()
            return not self.isCanceled()
        except errors.Cancelled:
            self.cancelled = True
            return False
        except (errors.PimcError, MissingDependencyError) as e:
            self.error = str(e)
            return False
        except BaseException as e:  # noqa: BLE001 - a bug must not take QGIS down
            self.error = f"unexpected error ({type(e).__name__}: {e}); details in the PIMC log"
            self.details = traceback.format_exc()
            return False
        finally:
            self.seconds = time.perf_counter() - t0

    def work(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ main thread
    def finished(self, result: bool) -> None:  # noqa: D401 (QGIS API)
        try:
            self.cancelled = self.cancelled or self.isCanceled()
            self.succeeded = bool(result) and not self.cancelled and self.error is None
            if self.succeeded:
                self.on_success()
            else:
                self.on_failure()
        except Exception as e:  # noqa: BLE001 - e.g. the project went away meanwhile
            self.succeeded = False
            self.error = f"unexpected error after the task ({type(e).__name__}: {e}); details in the PIMC log"
            self.details = traceback.format_exc()
            self._report_error()
        finally:
            remove_paths(self.temp_files)
            self.done = True
            LIVE.discard(self)
        callback, self.on_done = self.on_done, None
        if callback is not None:
            try:
                callback(self)
            except Exception:  # noqa: BLE001
                QgsMessageLog.logMessage(f"error in the task callback:\n{traceback.format_exc()}", LOG_TAG, MSG_CRITICAL)

    def on_success(self) -> None:
        pass

    def on_failure(self) -> None:
        self.cleanup()
        if self.cancelled:
            self.message(f"{self.description()}: cancelled; nothing was written", MSG_INFO)
        else:
            self._report_error()

    def cleanup(self) -> None:
        """Remove what a failed or cancelled run left (subclasses)."""

    def _report_error(self) -> None:
        text = f"{self.description()}: {self.error or 'failed'}"
        log = text + (f"\n{self.details}" if self.details else "")
        QgsMessageLog.logMessage(log, LOG_TAG, MSG_CRITICAL)
        if self.iface is not None:
            self.iface.messageBar().pushMessage("PIMC", text, level=MSG_CRITICAL, duration=0)

    def message(self, text: str, level=MSG_INFO, duration: int = 8) -> None:
        QgsMessageLog.logMessage(text, LOG_TAG, level)
        if self.iface is not None:
            self.iface.messageBar().pushMessage("PIMC", text, level=level, duration=duration)


def start(task: PimcTask) -> PimcTask:
    """Hand ``task`` to QGIS's task manager (it runs as soon as a thread is free)."""
    LIVE.add(task)
    QgsApplication.taskManager().addTask(task)
    return task


def new_run_folder(root: str | os.PathLike | None, when: dt.datetime | None = None) -> Path:
    """A new, empty folder ``PIMC_<timestamp>`` in ``root`` (a temporary folder when empty), with
    the mode the umask gives (``mkdtemp`` alone makes it private, 0700)."""
    base = Path(str(root).strip()).expanduser() if root and str(root).strip() else Path(tempfile.gettempdir()) / "pimc_maps"
    base.mkdir(parents=True, exist_ok=True)
    stamp = f"{(when or dt.datetime.now()):%Y%m%d_%H%M%S}"
    folder = Path(tempfile.mkdtemp(prefix=f"PIMC_{stamp}_", dir=base))
    import_core("pimc_core.io.atomic").follow_umask(folder)
    return folder


class MapTask(PimcTask):
    """Map a region with a model in the background; add the maps as layers when done.

    Args:
        ts: the opened series (reads open their files per call: safe in a worker thread).
        model: a ``.pimc`` path, ``builtin:nearest-centroid``, a model or a factory.
        region: a :class:`~qgis_plugin.mapping.RegionSpec` in the series CRS (None: everything).
        out_root: the output folder; the maps go into a new sub-folder ``PIMC_<timestamp>_…``,
            removed again when the run fails or is cancelled (nothing is left).
        request: products and their settings.
        add_layers: add the maps to the project (a group ``PIMC <timestamp>``) when done.
    """

    def __init__(self, ts, model: Any, region: RegionSpec | None, out_root: str | os.PathLike | None,
                 request: MapRequest, *, add_layers: bool = True, iface=None,
                 on_done: Callable[[PimcTask], None] | None = None, description: str | None = None) -> None:
        region = region or RegionSpec()
        products = ", ".join(request.products)
        super().__init__(description or f"PIMC maps ({products}) of the {region.description}", iface=iface,
                         on_done=on_done)
        self.ts = ts
        self.model = model
        self.region = region
        self.out_root = out_root
        self.request = request
        self.add_layers = add_layers
        self.started = dt.datetime.now()
        self.out_dir: Path | None = None
        self.outcome: MapOutcome | None = None
        self.group = None
        self.layers: list = []

    def work(self) -> None:
        self.out_dir = new_run_folder(self.out_root, self.started)
        self.setProgress(0.0)
        region = self.region.build(self.ts.grid)
        self.outcome = run_maps(
            self.ts, self.model, region, self.out_dir, self.request,
            progress=lambda f: self.setProgress(100.0 * f), cancel=self.isCanceled,
        )

    def cleanup(self) -> None:
        remove_tree(self.out_dir)

    def on_success(self) -> None:
        out = self.outcome
        if self.add_layers and out is not None and out.files:
            from .layers import add_result_layers, group_name, next_region_number
            from .mapping import model_label

            n = next_region_number()
            model = model_label(self.model) if self.request.needs_model() else ""  # phenology alone: none
            name = group_name(self.started, region=f"region {n} — {self.region.description}", model=model)
            subtitle = " — ".join(p for p in (model, f"region {n}") if p)
            self.group, self.layers = add_result_layers(out.files, name=name, subtitle=subtitle, region=n)
            if "query" in self.request.products:
                self._name_query_layers(subtitle)
        self.message(f"maps of the {self.region.description} ready: {out.summary()} — in {self.out_dir}", MSG_SUCCESS, 8)


    def _name_query_layers(self, subtitle: str) -> None:
        """The similarity layer of a text query is named after its sentence."""
        text = str(self.request.text).strip()
        for layer in self.layers:
            if layer.customProperty("pimc/product") == "similarity":
                layer.setName(f"“{text}” — {subtitle}")
                layer.setCustomProperty("pimc/query", text)

    def unknown_words(self) -> list[str]:
        """The words of a text query the model's text head does not know (ignored by the query)."""
        return list(self.outcome.extra.get("unknown", ())) if self.outcome is not None else []


class SuggestTask(PimcTask):
    """Suggest where to label next in the background; add the points as an editable layer.

    Args:
        ts, model, region, out_root: as :class:`MapTask` (the points go into a new sub-folder
            ``PIMC_<timestamp>_…`` of ``out_root``, removed again when the run fails).
        n: number of points. seed: breaks ties in uncertainty.
        add_layer: add the points to the project, in edit mode, when done.
        labels, class_field: the labels made so far (a label raster, or a vector file and its
            class field), never suggested (:func:`~qgis_plugin.mapping.run_suggest`).
        temp_files: files made for this run (exported labels): removed when it ends.
    """

    def __init__(self, ts, model: Any, region: RegionSpec | None, out_root: str | os.PathLike | None, n: int, *,
                 seed: int = 0, add_layer: bool = True, iface=None,
                 on_done: Callable[[PimcTask], None] | None = None, labels: str | os.PathLike | None = None,
                 class_field: str | None = None, temp_files: list[str | os.PathLike] | None = None) -> None:
        region = region or RegionSpec()
        super().__init__(f"PIMC: {int(n)} suggested samples in the {region.description}", iface=iface, on_done=on_done,
                         temp_files=temp_files)
        self.ts, self.model, self.region, self.out_root = ts, model, region, out_root
        self.n, self.seed, self.add_layer = int(n), int(seed), add_layer
        self.labels, self.class_field = labels, class_field
        self.started = dt.datetime.now()
        self.out_dir: Path | None = None
        self.result = None
        self.layer = None

    def work(self) -> None:
        self.out_dir = new_run_folder(self.out_root, self.started)
        self.setProgress(0.0)
        region = self.region.build(self.ts.grid)
        self.result = run_suggest(self.ts, self.model, region, self.out_dir / SUGGEST_FILE, self.n, seed=self.seed,
                                  progress=lambda f: self.setProgress(100.0 * f), cancel=self.isCanceled,
                                  labels=self.labels, class_field=self.class_field)

    def cleanup(self) -> None:
        remove_tree(self.out_dir)

    def on_success(self) -> None:
        if self.add_layer:
            self.layer = add_points_layer(self.result.path, f"Suggested samples {self.started:%H:%M:%S} (fill in class)")
        self.message(f"{self.result.rows.size} suggested samples: fill in their 'class' and train again with them "
                     f"as labels — {self.result.path}", MSG_SUCCESS, 10)


def add_points_layer(path: str | os.PathLike, name: str, project=None):
    """Add a points file of :func:`pimc_core.maps.suggest.suggest_samples` to the project, on top
    of the layer tree, in edit mode with only its ``class`` field editable, styled so the points
    stay visible on any map: red dots with a white rim while their ``class`` is empty, green once
    it is filled in. Returns the layer.

    Raises:
        InputError: QGIS cannot open the file as a vector layer.
    """
    from qgis.core import QgsMarkerSymbol, QgsProject, QgsRuleBasedRenderer, QgsVectorLayer

    layer = QgsVectorLayer(str(path), name, "ogr")
    if not layer.isValid():
        raise import_core("pimc_core.errors").InputError(f"{path}: QGIS cannot open the points as a vector layer")
    form = layer.editFormConfig()
    for i, f in enumerate(layer.fields()):
        form.setReadOnly(i, f.name().lower() != "class")
    layer.setEditFormConfig(form)
    root = QgsRuleBasedRenderer.Rule(None)
    for label, expr, colour in (("to label", '"class" IS NULL', "#ff0000"), ("labelled", "ELSE", "#1a9641")):
        sym = QgsMarkerSymbol.createSimple({"name": "circle", "color": colour, "outline_color": "#ffffff",
                                            "outline_width": "0.5", "size": "3.2"})
        root.appendChild(QgsRuleBasedRenderer.Rule(sym, 0, 0, expr if expr != "ELSE" else "", label,
                                                   elseRule=expr == "ELSE"))
    layer.setRenderer(QgsRuleBasedRenderer(root))
    layer.setCustomProperty("pimc/product", "suggested_samples")
    proj = project or QgsProject.instance()
    proj.addMapLayer(layer, False)
    proj.layerTreeRoot().insertLayer(0, layer)
    layer.startEditing()
    return layer


class FitTask(PimcTask):
    """Train a model in the background (:func:`pimc_core.fit.fit`); ``model_path`` when done.

    Args:
        ts: the opened series.
        job: labels, output file, class field / table and configuration.
        temp_files: files made for this run (exported labels): removed when it ends.
    """

    def __init__(self, ts, job: FitJob, *, iface=None, on_done: Callable[[PimcTask], None] | None = None,
                 temp_files: list[str | os.PathLike] | None = None, description: str | None = None) -> None:
        super().__init__(description or f"PIMC training → {job.out_path().name}", iface=iface, on_done=on_done,
                         temp_files=temp_files)
        self.ts = ts
        self.job = job
        self.result = None
        self.model_path: Path | None = None
        self.log_lines: list[str] = []
        self.stage = ""

    def _log(self, line: str) -> None:
        self.log_lines.append(line)
        QgsMessageLog.logMessage(line, LOG_TAG, MSG_INFO)

    def work(self) -> None:
        self.setProgress(0.0)
        self.result = run_fit(self.ts, self.job, progress=lambda f: self.setProgress(100.0 * f),
                              cancel=self.isCanceled, log=self._log)
        self.model_path = Path(self.result.path)

    def on_success(self) -> None:
        self.message(f"model saved: {self.result.summary()}", MSG_SUCCESS, 10)


__all__ = ["LIVE", "FitTask", "MapTask", "PimcTask", "SuggestTask", "add_points_layer", "new_run_folder", "remove_paths",
           "start"]
