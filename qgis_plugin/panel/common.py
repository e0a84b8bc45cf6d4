"""What the panel's sections share: where they keep settings, how a status line looks (ok in
green, an error in red), the progress bar + Cancel of a background run, and how a slot reports
an error without ever letting an exception escape into Qt."""

from __future__ import annotations

import traceback
from typing import Any, Callable, Iterable

from qgis.core import Qgis, QgsMapLayerProxyModel, QgsMessageLog
from qgis.gui import QgsCollapsibleGroupBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QCheckBox, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QToolButton

from .flow_layout import FlowLayout

LOG_TAG = "PIMC"
#: Prefix of the panel's keys in QgsSettings (the last source, sensor, model, folders).
SETTINGS = "pimc/dock/"
OK_STYLE = "color: #1a7f37;"
ERR_STYLE = "color: #c62828;"
UNEXPECTED = "unexpected error (details in the PIMC log): {}"
#: Layer kinds for QgsMapLayerComboBox.setFilters (QGIS >= 3.34 / before).
LAYER_FILTERS = getattr(Qgis, "LayerFilter", None) or QgsMapLayerProxyModel.Filter


class Section(QgsCollapsibleGroupBox):
    """A collapsible section of the panel (its collapsed state is not remembered).

    Expanding a QgsCollapsibleGroupBox (also expanding an expanded one, or showing it) shows every
    child widget again, also a progress bar and Cancel hidden because no run goes on: after each
    of these the section hides them again unless its run is live (:func:`show_running` marks
    that)."""

    def __init__(self, title: str, name: str, parent=None) -> None:
        super().__init__(title, parent)
        self.setObjectName(name)
        self.setSaveCollapsedState(False)
        self._run_rows: list[tuple[QProgressBar, QPushButton]] = []
        self.collapsedStateChanged.connect(self._restore_run_rows)

    def add_progress(self, row: QHBoxLayout, on_cancel: Callable[[], None]) -> tuple[QProgressBar, QPushButton]:
        """:func:`add_progress`, kept hidden across collapse/expand while nothing runs."""
        progress, cancel = add_progress(row, on_cancel)
        self._run_rows.append((progress, cancel))
        return progress, cancel

    def setCollapsed(self, collapse: bool) -> None:  # noqa: N802 (QGIS API)
        # QGIS shows every child again even when the state does not change (and then emits nothing)
        super().setCollapsed(collapse)
        self._restore_run_rows(self.isCollapsed())

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API): QGIS re-applies the state when shown
        super().showEvent(event)
        self._restore_run_rows(self.isCollapsed())

    def _restore_run_rows(self, collapsed: bool) -> None:
        for progress, cancel in self._run_rows:
            running = bool(progress.property("pimc_running"))
            progress.setVisible(running and not collapsed)
            cancel.setVisible(running and not collapsed)


def status_label(text: str, name: str | None = None) -> QLabel:
    """A word-wrapped status line whose text can be selected (and copied)."""
    label = QLabel(text)
    if name:
        label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def file_widget(name: str, title: str, placeholder: str, *, mode=None, file_filter: str | None = None,
                tip: str | None = None) -> QgsFileWidget:
    """A file (or folder: ``mode``, a ``QgsFileWidget.StorageMode``) chooser."""
    widget = QgsFileWidget()
    widget.setObjectName(name)
    if mode is not None:
        widget.setStorageMode(mode)
    if file_filter is not None:
        widget.setFilter(file_filter)
    widget.setDialogTitle(title)
    widget.lineEdit().setPlaceholderText(placeholder)
    if tip is not None:
        widget.setToolTip(tip)
    return widget


def manifest_row(row: QHBoxLayout, name: str, title: str, placeholder: str, folder_tip: str,
                 on_folder: Callable[[], None], tip: str | None = None) -> tuple[QgsFileWidget, QToolButton]:
    """A manifest chooser and its *Folder…* button (``on_folder`` asks for a folder) added to ``row``."""
    widget = file_widget(name, title, placeholder, mode=QgsFileWidget.StorageMode.GetFile,
                         file_filter="Manifest (*.yaml *.yml);;All files (*)", tip=tip)
    button = QToolButton()
    button.setText("Folder…")
    button.setToolTip(folder_tip)
    button.clicked.connect(on_folder)
    row.addWidget(widget, 1)
    row.addWidget(button)
    return widget, button


def layer_combo(name: str, filters) -> QgsMapLayerComboBox:
    """A chooser of the project's layers of the kinds ``filters`` (:data:`LAYER_FILTERS`), or none."""
    combo = QgsMapLayerComboBox()
    combo.setObjectName(name)
    combo.setFilters(filters)
    combo.setAllowEmptyLayer(True)
    return combo


def check_boxes(items: Iterable[tuple[str, str, str | None, bool]]) -> dict[str, QCheckBox]:
    """Check boxes ``(key, text, tooltip, checked)`` by key (not placed yet)."""
    boxes: dict[str, QCheckBox] = {}
    for key, text, tip, checked in items:
        cb = QCheckBox(text)
        if tip is not None:
            cb.setToolTip(tip)
        cb.setChecked(checked)
        boxes[key] = cb
    return boxes


def flow_of(widgets: Iterable) -> FlowLayout:
    """The widgets in a :class:`FlowLayout` (rows that wrap at a narrow width)."""
    flow = FlowLayout()
    for w in widgets:
        flow.addWidget(w)
    return flow


def check_grid(items: Iterable[tuple[str, str, str | None, bool]], columns: int,
               step: int = 1) -> tuple[QGridLayout, dict[str, QCheckBox]]:
    """Check boxes ``(key, text, tooltip, checked)`` in a grid, ``columns`` a row, ``step`` grid
    columns apart; returns the grid and the boxes by key."""
    grid = QGridLayout()
    boxes: dict[str, QCheckBox] = {}
    for i, (key, text, tip, checked) in enumerate(items):
        cb = QCheckBox(text)
        if tip is not None:
            cb.setToolTip(tip)
        cb.setChecked(checked)
        boxes[key] = cb
        grid.addWidget(cb, i // columns, (i % columns) * step)
    return grid, boxes


def add_progress(row: QHBoxLayout, on_cancel: Callable[[], None]) -> tuple[QProgressBar, QPushButton]:
    """Add a hidden 0..100 progress bar (stretching) and a hidden Cancel button to ``row``."""
    progress = QProgressBar()
    progress.setRange(0, 100)
    progress.setVisible(False)
    row.addWidget(progress, 1)
    cancel = QPushButton("Cancel")
    cancel.setVisible(False)
    cancel.clicked.connect(on_cancel)
    row.addWidget(cancel)
    return progress, cancel


def show_running(progress: QProgressBar, cancel: QPushButton, running: bool) -> None:
    """Show the progress bar (from 0) and Cancel while a run goes on; hide them (back at 0, no
    stale 100 %) after it."""
    progress.setValue(0)
    progress.setProperty("pimc_running", running)
    progress.setVisible(running)
    cancel.setVisible(running)


def series_for_run(last_task, what: str, source_box, report: Callable[[str], None]):
    """The series a new background run of a section works on, or None with the reason given to
    ``report``: the section's ``last_task`` still runs (``what``: "a map run" …), or the
    series of ``source_box`` (the *Time series* section) does not open."""
    if last_task is not None and not last_task.done:
        report(f"{what} is in progress: wait for it or cancel it")
        return None
    ts = source_box.current_series()
    if ts is None:
        report(source_box.why_no_series())
    return ts


def set_status(label: QLabel, text: str, ok: bool | None) -> None:
    """Show ``text`` in ``label``: green when ``ok``, red when not, plain when None."""
    label.setText(text)
    label.setStyleSheet("" if ok is None else OK_STYLE if ok else ERR_STYLE)


def show_error(label: QLabel, text: str, iface=None) -> None:
    """The error in the section's status line, and as a warning in the message bar."""
    label.setText(text)
    label.setStyleSheet(ERR_STYLE)
    if iface is not None:
        from ..compat import MSG_WARNING

        iface.messageBar().pushMessage("PIMC", text, level=MSG_WARNING, duration=8)


def show_task_end(label: QLabel, task, success: Callable[[], str], cancelled: str, failed: str) -> None:
    """How a background run ended: ``success()`` in green, ``cancelled``, or the task's error
    (``failed`` when it has none) in red."""
    if task.succeeded:
        set_status(label, success(), ok=True)
    elif task.cancelled:
        set_status(label, cancelled, ok=None)
    else:
        set_status(label, task.error or failed, ok=False)


def drop_task(task) -> None:
    """Cancel ``task`` if it still runs, without its callback (the panel is going away)."""
    if task is not None and not task.done:
        task.on_done = None
        task.cancel()


def log_exception(what: str) -> None:
    """The current exception's traceback to the *PIMC* tab of the log."""
    from ..compat import MSG_CRITICAL

    QgsMessageLog.logMessage(f"error while {what}:\n{traceback.format_exc()}", LOG_TAG, MSG_CRITICAL)


def notify(iface, text: str, ok: bool) -> None:
    """A short message in the message bar (the log without a GUI)."""
    if iface is not None:
        from ..compat import MSG_CRITICAL, MSG_SUCCESS

        iface.messageBar().pushMessage("PIMC", text, level=MSG_SUCCESS if ok else MSG_CRITICAL, duration=5)
    else:
        QgsMessageLog.logMessage(text, LOG_TAG)


def guarded(what: str, report: Callable[[str], None], fn: Callable[..., Any], *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` from a slot: an unexpected exception is logged with its traceback
    and reported as one line through ``report``; None is returned then. Never raises."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - a slot: nothing may escape
        log_exception(what)
        report(UNEXPECTED.format(e))
        return None
