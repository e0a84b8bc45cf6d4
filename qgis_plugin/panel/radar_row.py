"""The *Radar (S1)* field of the panel's *Time series* section: an optional Sentinel-1 source
(a manifest or a folder of dated files with VV/VH bands) on the grid of the optical series, read
beside it (:func:`pimc_core.io.sar_source.with_sar`, as ``--sar`` on the command line). It is
checked like the optical source: a one-line message under the field, or the line that says how
the files are read (``read as …``, the ``reading:`` line of ``pimc info``)."""

from __future__ import annotations

from pathlib import Path

from qgis.PyQt.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .. import source
from ..bootstrap import import_core
from .common import log_exception, manifest_row, set_status, status_label


class RadarRow(QWidget):
    """The radar field, its *Folder…* button and its status line (hidden while the field is empty)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Radar (S1), optional"))  # a line of its own: the row fits the narrow dock
        row = QHBoxLayout()
        self.sar_widget, self.sar_folder_button = manifest_row(
            row, "PimcRadarWidget", "Sentinel-1 manifest", "optional: S1 manifest or folder",
            "Choose a folder of dated Sentinel-1 rasters", self._choose_folder,
            tip="An optional Sentinel-1 GRD source (manifest .yaml, or a folder of dated files with VV/VH bands) on "
                "the grid of the time series: its radar series are read beside the optical ones by every map and "
                "training run (as --sar on the command line)")
        lay.addLayout(row)
        self.sar_label = status_label("", "PimcRadarStatus")
        self.sar_label.setVisible(False)
        lay.addWidget(self.sar_label)
        self.problem: str | None = None

    def path(self) -> str:
        """The radar source as typed or chosen ('' when none)."""
        return (self.sar_widget.filePath() or "").strip()

    def set_path(self, path) -> None:
        self.sar_widget.setFilePath(str(path or ""))

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of dated Sentinel-1 rasters", self.path())
        if folder:
            self.set_path(folder)

    def combine(self, ts):
        """``ts`` with the radar source read beside it (or ``ts`` when the field is empty); None
        when the radar source cannot be opened or is not on the grid of ``ts`` (the one-line
        reason is under the field and in :attr:`problem`)."""
        self.problem = None
        path = self.path()
        if not path:
            self.sar_label.setVisible(False)
            return ts
        errors = import_core("pimc_core.errors")
        try:
            sar = import_core("pimc_core.io.timeseries").open_series(Path(path).expanduser())
            combined = import_core("pimc_core.io.sar_source").with_sar(ts, sar)
        except errors.PimcError as e:
            self.problem = str(e)
        except Exception as e:  # noqa: BLE001 - a bug, not a user error: say so, log the traceback
            log_exception("opening the radar (S1) source")
            self.problem = f"unexpected error while opening it: {e}"
        if self.problem is not None:
            self._show(f"radar (S1) source: {self.problem}", ok=False)
            return None
        self._show("✓ " + source.describe_series(sar), ok=True)
        return combined

    def show_unchecked(self) -> None:
        """No optical series to check the radar source against: say nothing about it yet."""
        self.problem = None
        self.sar_label.setVisible(False)

    def _show(self, text: str, ok: bool) -> None:
        set_status(self.sar_label, text, ok)
        self.sar_label.setVisible(True)


__all__ = ["RadarRow"]
