"""The PIMC time-series panel: choose a series, check it, inspect pixels, map regions, train.

The panel is a dock widget holding four sections (modules of :mod:`qgis_plugin.panel`), one
under the other in a scroll area, all working on the same source:

* **Time series** (:class:`~qgis_plugin.panel.source_section.SourceSection`) — a manifest or
  folder, or raster layers of the project; the sensor preset; an optional band mapping; the
  model file (``.pimc``) the map tools use. Checked as soon as it changes.
* **Pixel inspector** (:class:`~qgis_plugin.panel.inspector_section.InspectorSection`) — a click
  with the map tool shows that pixel's index curves and recurrence plots; "Save figure…".
* **Maps of a region** (:class:`~qgis_plugin.panel.maps_section.MapsSection`) — products, then a
  region drawn on the map, the canvas extent or selected polygons: a background map run.
* **Train a model** (:class:`~qgis_plugin.panel.fit_section.FitSection`) — labels, an effort
  preset, a ``.pimc`` file: a background training run; its model becomes the panel's model file.

The dock answers the names of its sections' widgets, state and methods too (``dock.status_label``,
``dock.run_region``, ``dock.fit_task`` …: see :data:`SECTION_NAMES`), as plugin.py, the
screenshot script and the tests use them.
"""

from __future__ import annotations

import shutil
import tempfile

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QDockWidget, QScrollArea, QVBoxLayout, QWidget

from .panel.fit_section import FitSection
from .panel.inspector_section import InspectorSection
from .panel.layers_table import LayersTable, layer_date, layer_file
from .panel.maps_section import MapsSection
from .panel.source_section import SourceSection

#: The names the dock answers for its sections: section attribute → names on that section.
SECTION_NAMES: dict[str, tuple[str, ...]] = {
    "source_box": (
        "mode_path", "mode_layers", "path_row", "source_widget", "folder_button", "layers_box", "layers_table",
        "reload_layers_button", "sensor_combo", "bands_edit", "model_widget", "model_label", "status_label",
        "series", "set_source_path", "set_sensor", "source_spec", "validate", "current_series", "model_spec",
        "set_model_path",
    ),
    "inspector_box": (
        "index_checks", "min_valid_spin", "inspect_button", "pixel_label", "figure_view", "save_button",
        "last_result", "last_timing", "last_query_xy", "selected_indices", "set_indices", "inspect_point",
        "save_figure",
    ),
    "maps_box": (
        "product_checks", "k_spin", "rect_action", "polygon_action", "extent_button", "features_button",
        "region_layer_combo", "out_widget", "map_progress", "map_cancel_button", "map_status", "map_task",
        "rect_tool", "polygon_tool", "map_products", "set_map_products", "start_rectangle_tool",
        "start_polygon_tool", "map_canvas_extent", "map_selected_features", "run_region", "cancel_map",
    ),
    "fit_box": (
        "fit_layer_combo", "fit_field_combo", "fit_selected_check", "fit_preset_combo", "fit_classes_widget", "fit_out_widget",
        "fit_button", "fit_progress", "fit_cancel_button", "fit_status", "fit_task", "set_fit_preset",
        "start_fit", "cancel_fit",
    ),
}


class PimcDock(QDockWidget):
    """The PIMC panel. ``iface`` may be None (tests, or QGIS without a GUI).

    Its sections: :attr:`source_box`, :attr:`inspector_box`, :attr:`maps_box`, :attr:`fit_box`.
    """

    def __init__(self, iface=None, parent=None, inspector_action=None) -> None:
        super().__init__("PIMC time series", parent)
        self.setObjectName("PimcDock")
        self.iface = iface
        self._tmpdir = tempfile.mkdtemp(prefix="pimc_panel_")
        body = QWidget()
        lay = QVBoxLayout(body)
        self.source_box = SourceSection(self._tmpdir)
        self.inspector_box = InspectorSection(self.source_box, iface, inspector_action)
        self.maps_box = MapsSection(self.source_box, self.inspector_box, iface)
        self.fit_box = FitSection(self.source_box, lambda: self.maps_box.out_widget.filePath().strip(),
                                  self._tmpdir, iface)
        self.maps_box.labels_source = self.fit_box.chosen_labels  # Suggest samples keeps off them
        for box in (self.source_box, self.inspector_box, self.maps_box, self.fit_box):
            lay.addWidget(box)
        lay.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)  # only narrower than its widest widget
        scroll.setWidget(body)
        self.setWidget(scroll)

        self.source_box.restore_settings()
        self.maps_box.restore_settings()
        self.source_box.start()

    def cleanup(self) -> None:
        """Cancel running tasks, remove the region tools, disconnect from the project, stop
        timers, remove the temporary folder."""
        for box in (self.source_box, self.maps_box, self.fit_box, self.inspector_box):
            box.cleanup()
        shutil.rmtree(self._tmpdir, ignore_errors=True)


def _section_name(box: str, name: str) -> property:
    return property(lambda self: getattr(getattr(self, box), name), doc=f"``{box}.{name}``")


for _box, _names in SECTION_NAMES.items():
    for _name in _names:
        setattr(PimcDock, _name, _section_name(_box, _name))
del _box, _names, _name

__all__ = ["SECTION_NAMES", "LayersTable", "PimcDock", "layer_date", "layer_file"]
