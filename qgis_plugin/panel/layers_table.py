"""The table of the project's raster layers that make a time series: one row per GDAL raster
layer, ticked when used, with its acquisition date (read from the layer or file name, editable,
sorted by date)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from qgis.core import QgsMapLayer, QgsProject, QgsProviderRegistry, QgsRasterLayer
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ..bootstrap import import_core


def _date_of(text: str) -> dt.date | None:
    dates = import_core("pimc_core.io.dates")
    text = (text or "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return dates.date_from_name(text)


def layer_file(layer: QgsMapLayer) -> str | None:
    """The file behind a GDAL raster layer, or None (web services, memory layers …)."""
    if not isinstance(layer, QgsRasterLayer) or layer.providerType() != "gdal":
        return None
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    path = parts.get("path") or layer.source()
    return path if Path(path).is_file() else None


def layer_date(layer: QgsMapLayer, path: str | None) -> dt.date | None:
    """The acquisition date in the layer's name, else in its file name."""
    dates = import_core("pimc_core.io.dates")
    return dates.date_from_name(layer.name()) or (dates.date_from_name(Path(path).name) if path else None)


class LayersTable(QTableWidget):
    """Raster layers of the project with their dates: tick to use, edit the date, sorted by date."""

    COL_LAYER, COL_DATE = 0, 1
    changed = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(0, 2, parent)
        self.setObjectName("PimcLayersTable")
        self.setHorizontalHeaderLabels(["Layer", "Date (YYYY-MM-DD)"])
        self.horizontalHeader().setSectionResizeMode(self.COL_LAYER, QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setSectionResizeMode(self.COL_DATE, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setMinimumHeight(110)
        self.itemChanged.connect(self._on_item_changed)
        self._filling = False

    def reload(self, project: QgsProject | None = None) -> None:
        """List the project's GDAL raster layers (ticked when a date was found), keeping edits."""
        project = project or QgsProject.instance()
        previous = {r["layer_id"]: r for r in self.rows(all_rows=True)}
        self._filling = True
        self.setSortingEnabled(False)
        self.setRowCount(0)
        for layer in project.mapLayers().values():
            path = layer_file(layer)
            if path is None:
                continue
            old = previous.get(layer.id())
            date = old["date"] if old else layer_date(layer, path)
            checked = old["checked"] if old else date is not None
            r = self.rowCount()
            self.insertRow(r)
            name = QTableWidgetItem(layer.name())
            name.setData(Qt.ItemDataRole.UserRole, layer.id())
            name.setData(Qt.ItemDataRole.UserRole + 1, path)
            name.setToolTip(path)
            name.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable)
            name.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.setItem(r, self.COL_LAYER, name)
            self.setItem(r, self.COL_DATE, QTableWidgetItem(date.isoformat() if date else ""))
        self.setSortingEnabled(True)
        self.sortItems(self.COL_DATE, Qt.SortOrder.AscendingOrder)
        self._filling = False
        self.changed.emit()

    def rows(self, all_rows: bool = False) -> list[dict]:
        """The ticked rows (or all) as dicts: layer_id, name, path, date (or None), checked."""
        out = []
        for r in range(self.rowCount()):
            name, date = self.item(r, self.COL_LAYER), self.item(r, self.COL_DATE)
            if name is None:
                continue
            checked = name.checkState() == Qt.CheckState.Checked
            if checked or all_rows:
                out.append(dict(
                    layer_id=name.data(Qt.ItemDataRole.UserRole), name=name.text(),
                    path=name.data(Qt.ItemDataRole.UserRole + 1),
                    date=_date_of(date.text() if date else ""), checked=checked,
                ))
        return out

    def set_date(self, row: int, text: str) -> None:
        """Edit the date of a row (as a user typing it)."""
        self.item(row, self.COL_DATE).setText(text)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        if item.column() == self.COL_DATE:
            d = _date_of(item.text())
            if d is not None and item.text() != d.isoformat():
                item.setText(d.isoformat())  # normalise 20230105 → 2023-01-05 (re-enters once)
                return
        self.changed.emit()


__all__ = ["LayersTable", "layer_date", "layer_file"]
