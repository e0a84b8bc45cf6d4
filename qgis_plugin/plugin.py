"""The plugin object: toolbar and Raster-menu entries, the panel, the map tool, the provider."""

from __future__ import annotations

from qgis.core import QgsApplication, QgsMessageLog
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QMenu

from .bootstrap import PLUGIN_DIR, missing_dependencies, missing_message, python_problem, release_core
from .compat import MSG_WARNING, QAction

MENU = "&PIMC"
ICON = PLUGIN_DIR / "icons" / "pimc.svg"
INSPECTOR_ICON = PLUGIN_DIR / "icons" / "inspector.svg"
LOG_TAG = "PIMC"


class PimcPlugin:
    """PIMC in QGIS. With ``iface`` None (qgis_process) only the Processing provider exists."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None
        self.toolbar = None
        self.menu = None
        self.actions: list[QAction] = []
        self.panel_action: QAction | None = None
        self.inspector_action: QAction | None = None
        self.install_action: QAction | None = None
        self.install_dialog = None
        self.dock = None
        self.map_tool = None
        self.missing = []
        self.python_problem: str | None = None

    # ------------------------------------------------------------------ Processing
    def initProcessing(self) -> None:  # noqa: N802 (QGIS API)
        """Register the "PIMC" Processing provider (also called alone by qgis_process)."""
        if self.provider is not None:
            return
        from .provider import PimcProvider

        registry = QgsApplication.processingRegistry()
        provider = PimcProvider()
        if registry.addProvider(provider):
            self.provider = provider
        self.check_dependencies()

    # ------------------------------------------------------------------ GUI
    def initGui(self) -> None:  # noqa: N802 (QGIS API)
        self.initProcessing()
        if self.iface is None:
            return
        mw = self.iface.mainWindow()
        self.toolbar = self.iface.addToolBar("PIMC")
        self.toolbar.setObjectName("PimcToolbar")
        self.toolbar.setToolTip("PIMC: pixel time series and recurrence plots")

        self.panel_action = QAction(QIcon(str(ICON)), "PIMC time-series panel", mw)
        self.panel_action.setObjectName("PimcPanelAction")
        self.panel_action.setCheckable(True)
        self.panel_action.setToolTip("Show the PIMC panel: choose a time series, inspect pixels")
        self.panel_action.toggled.connect(self.show_panel)

        self.inspector_action = QAction(QIcon(str(INSPECTOR_ICON)), "PIMC pixel inspector", mw)
        self.inspector_action.setObjectName("PimcInspectorAction")
        self.inspector_action.setCheckable(True)
        self.inspector_action.setToolTip("Click a pixel on the map: its index curves and recurrence plots")
        self.inspector_action.triggered.connect(self.toggle_inspector)

        # our own sub-menu of the Raster menu (QGIS 3.22's removePluginRasterMenu() leaves an
        # empty QMenu behind after unload; this one is deleted with the plugin)
        self.menu = QMenu(MENU, mw)
        self.menu.setObjectName("PimcMenu")
        self.menu.setIcon(QIcon(str(ICON)))
        for action in (self.panel_action, self.inspector_action):
            self.toolbar.addAction(action)
            self.menu.addAction(action)
            self.actions.append(action)
        self.install_action = QAction("Install missing packages\u2026", mw)
        self.install_action.setObjectName("PimcInstallAction")
        self.install_action.setToolTip("Show which Python packages PIMC lacks and install them into a folder "
                                       "of its own (only after you click Install)")
        self.install_action.triggered.connect(self.show_install_dialog)
        self.menu.addAction(self.install_action)
        self.iface.rasterMenu().addMenu(self.menu)
        self.push_dependency_message()

    def check_dependencies(self) -> list:
        """Find the missing packages (cheap: nothing is imported); log them once."""
        self.missing = missing_dependencies()
        self.python_problem = python_problem()
        if self.python_problem:
            QgsMessageLog.logMessage(self.python_problem, LOG_TAG, MSG_WARNING)
        if self.missing:
            text, details = missing_message(self.missing)
            QgsMessageLog.logMessage(f"{text}\n{details}", LOG_TAG, MSG_WARNING)
        return self.missing

    def push_dependency_message(self) -> None:
        """Tell the user in the message bar what is missing and how to install it."""
        if self.iface is None:
            return
        bar = self.iface.messageBar()
        if self.python_problem:
            bar.pushMessage("PIMC", self.python_problem, level=MSG_WARNING, duration=0)
        if self.missing:
            text, details = missing_message(self.missing)
            required = any(d.required for d in self.missing)
            bar.pushMessage("PIMC", text, details, level=MSG_WARNING, duration=0 if required else 30)

    def show_install_dialog(self, *_args, pip_args: tuple[str, ...] = (), target=None):
        """The "Install missing packages…" dialog (installs nothing before its Install button)."""
        from .install_dialog import InstallDialog

        if self.install_dialog is not None and self.install_dialog.task is not None \
                and not self.install_dialog.task.done:
            self.install_dialog.raise_()  # an install is running: show it, start no other
            return self.install_dialog
        self.install_dialog = InstallDialog(self.iface.mainWindow(), missing=self.check_dependencies(),
                                            pip_args=pip_args, target=target, iface=self.iface)
        self.install_dialog.show()
        return self.install_dialog

    def ensure_dock(self):
        """The panel, created on first use (keeps QGIS start-up free of matplotlib and rasterio)."""
        if self.dock is None:
            from .dock import PimcDock

            self.dock = PimcDock(self.iface, self.iface.mainWindow(), inspector_action=self.inspector_action)
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
            self.dock.visibilityChanged.connect(self._on_dock_visibility)
        return self.dock

    def show_panel(self, visible: bool = True) -> None:
        if not visible and self.dock is None:
            return
        dock = self.ensure_dock()
        dock.setVisible(visible)
        if visible:
            dock.raise_()

    def _on_dock_visibility(self, visible: bool) -> None:
        if self.panel_action is not None and self.panel_action.isChecked() != visible:
            self.panel_action.blockSignals(True)
            self.panel_action.setChecked(visible)
            self.panel_action.blockSignals(False)

    def ensure_map_tool(self):
        if self.map_tool is None:
            from .map_tool import PixelInspectorTool

            self.map_tool = PixelInspectorTool(self.iface.mapCanvas(), self._on_point)
            self.map_tool.setAction(self.inspector_action)
        return self.map_tool

    def toggle_inspector(self, checked: bool = True) -> None:
        canvas = self.iface.mapCanvas()
        if checked:
            self.show_panel(True)
            canvas.setMapTool(self.ensure_map_tool())
        elif self.map_tool is not None and canvas.mapTool() is self.map_tool:
            canvas.unsetMapTool(self.map_tool)

    def _on_point(self, point, crs) -> None:
        self.show_panel(True)
        self.dock.inspect_point(point, crs)

    # ------------------------------------------------------------------ unload
    def unload(self) -> None:
        """Remove every trace: map tool, dock, actions, toolbar, provider, the vendored core."""
        if self.map_tool is not None:
            canvas = self.iface.mapCanvas()
            if canvas.mapTool() is self.map_tool:
                canvas.unsetMapTool(self.map_tool)
            self.map_tool.setAction(None)
            self.map_tool.deleteLater()
            self.map_tool = None
        if self.dock is not None:
            self.dock.visibilityChanged.disconnect(self._on_dock_visibility)
            self.iface.removeDockWidget(self.dock)
            self.dock.cleanup()
            self.dock.close()
            self.dock.deleteLater()
            self.dock = None
        if self.menu is not None:
            self.iface.rasterMenu().removeAction(self.menu.menuAction())
            self.menu.deleteLater()
            self.menu = None
        if self.install_dialog is not None:
            self.install_dialog.cancel()
            self.install_dialog.deleteLater()
            self.install_dialog = None
        if self.install_action is not None:
            self.install_action.deleteLater()
            self.install_action = None
        for action in self.actions:
            if self.toolbar is not None:
                self.toolbar.removeAction(action)
            action.deleteLater()
        self.actions = []
        self.panel_action = self.inspector_action = None
        if self.toolbar is not None:
            self.iface.mainWindow().removeToolBar(self.toolbar)
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        release_core()
