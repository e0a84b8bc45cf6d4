"""Names that moved between QGIS 3.22 (PyQt5) and later QGIS 3.x / QGIS 4 (PyQt6).

Everything Qt comes from ``qgis.PyQt``; enums are always reached through their scoped names,
which both PyQt5 and PyQt6 accept. Where QGIS 3.36+ moved an enum into the ``Qgis`` namespace
(and QGIS 4 dropped the old place), the new name is used when present.
"""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
)

try:  # Qt6: QAction lives in QtGui
    from qgis.PyQt.QtGui import QAction  # type: ignore[attr-defined]
except ImportError:  # Qt5
    from qgis.PyQt.QtWidgets import QAction  # type: ignore[no-redef]


def _pick(new_owner: object, new_enum: str, old_owner: object, old_enum: str, member: str):
    owner = getattr(new_owner, new_enum, None)
    if owner is not None and hasattr(owner, member):
        return getattr(owner, member)
    return getattr(getattr(old_owner, old_enum), member)


FILE_BEHAVIOR_FILE = _pick(Qgis, "ProcessingFileParameterBehavior", QgsProcessingParameterFile, "Behavior", "File")
FILE_BEHAVIOR_FOLDER = _pick(Qgis, "ProcessingFileParameterBehavior", QgsProcessingParameterFile, "Behavior", "Folder")
NUMBER_INTEGER = _pick(Qgis, "ProcessingNumberParameterType", QgsProcessingParameterNumber, "Type", "Integer")
NUMBER_DOUBLE = _pick(Qgis, "ProcessingNumberParameterType", QgsProcessingParameterNumber, "Type", "Double")


def _flag_advanced():
    new = getattr(Qgis, "ProcessingParameterFlag", None)  # QGIS >= 3.36
    if new is not None and hasattr(new, "Advanced"):
        return new.Advanced
    return QgsProcessingParameterDefinition.Flag.FlagAdvanced


FLAG_ADVANCED = _flag_advanced()

MSG_INFO = Qgis.MessageLevel.Info
MSG_WARNING = Qgis.MessageLevel.Warning
MSG_CRITICAL = Qgis.MessageLevel.Critical
MSG_SUCCESS = Qgis.MessageLevel.Success

__all__ = [
    "QAction", "FILE_BEHAVIOR_FILE", "FILE_BEHAVIOR_FOLDER", "NUMBER_INTEGER", "NUMBER_DOUBLE",
    "FLAG_ADVANCED", "MSG_INFO", "MSG_WARNING", "MSG_CRITICAL", "MSG_SUCCESS",
]
