"""What every PIMC algorithm shares: the source parameters, opening the series from them, and
turning core errors into one-line Processing errors."""

from __future__ import annotations

import contextlib
from typing import Iterator

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtGui import QIcon

from .. import source
from ..bootstrap import MissingDependencyError, import_core
from ..compat import FILE_BEHAVIOR_FILE, FILE_BEHAVIOR_FOLDER, FLAG_ADVANCED
from .provider import ICON

SOURCE = "SOURCE"
SOURCE_FOLDER = "SOURCE_FOLDER"
SENSOR = "SENSOR"
BANDS = "BANDS"
INDICES = "INDICES"
AUTO = "auto"


def advanced(param):
    """Mark a parameter as advanced; return it."""
    param.setFlags(param.flags() | FLAG_ADVANCED)
    return param


class PimcAlgorithm(QgsProcessingAlgorithm):
    """Base class: group, icon, source parameters, core errors → QgsProcessingException."""

    def createInstance(self):  # noqa: N802
        return type(self)()

    def group(self) -> str:
        return "Time series"

    def groupId(self) -> str:  # noqa: N802
        return "timeseries"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    # ------------------------------------------------------------------ source parameters
    def add_source_parameters(self) -> None:
        """SOURCE (manifest or folder path), SOURCE_FOLDER (folder picker), SENSOR, BANDS."""
        self.addParameter(QgsProcessingParameterFile(
            SOURCE, "Time series: manifest (.yaml) or folder of dated rasters",
            behavior=FILE_BEHAVIOR_FILE, optional=True,
            # "All files (*)" last: a folder path typed here is accepted too (the default filter,
            # "All files (*.*)", would reject any path without a dot)
            fileFilter="Manifest (*.yaml *.yml);;All files (*)",
        ))
        self.addParameter(QgsProcessingParameterFile(
            SOURCE_FOLDER, "…or a folder of dated rasters / date folders",
            behavior=FILE_BEHAVIOR_FOLDER, optional=True,
        ))
        self.addParameter(QgsProcessingParameterEnum(
            SENSOR, "Sensor preset", options=[AUTO] + source.sensor_names(),
            defaultValue=AUTO, usesStaticStrings=True,
        ))
        self.addParameter(advanced(QgsProcessingParameterString(
            BANDS, "Band mapping inside multi-band files (e.g. blue=1,red=3,nir=4)", optional=True,
        )))

    def source_spec(self, parameters, context: QgsProcessingContext) -> source.SourceSpec:
        """The :class:`~qgis_plugin.source.SourceSpec` the parameters describe."""
        errors = import_core("pimc_core.errors")
        path = self.parameterAsFile(parameters, SOURCE, context)
        folder = self.parameterAsFile(parameters, SOURCE_FOLDER, context)
        if path and folder:
            raise errors.ConfigError("give either a manifest/folder (SOURCE) or a folder (SOURCE_FOLDER), not both")
        if not path and not folder:
            raise errors.ConfigError("no time series: give a manifest (.yaml) or a folder of dated rasters")
        sensor = self.parameterAsEnumString(parameters, SENSOR, context) or AUTO
        bands = source.parse_bands(self.parameterAsString(parameters, BANDS, context))
        return source.SourceSpec(path=path or folder, sensor=None if sensor == AUTO else sensor, bands=bands)

    def open_series(self, parameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback | None = None):
        """Open the series the parameters name (the helper every PIMC algorithm uses)."""
        ts = self.source_spec(parameters, context).open()
        if feedback is not None:
            feedback.pushInfo(f"{ts.source}: {source.describe_series(ts)}")
        return ts

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, msg
        try:
            with core_errors():
                ts = self.open_series(parameters, context)
                self.check_more(parameters, context, ts)
        except QgsProcessingException as e:
            return False, str(e)
        return True, ""

    def check_more(self, parameters, context, ts) -> None:
        """Subclasses: validate their own parameters against the opened series (raise PimcError)."""


@contextlib.contextmanager
def core_errors() -> Iterator[None]:
    """Turn a PimcError or a missing package into a QgsProcessingException with its one line."""
    try:
        errors = import_core("pimc_core.errors")
    except MissingDependencyError as e:
        raise QgsProcessingException(str(e)) from None
    try:
        yield
    except errors.PimcError as e:
        raise QgsProcessingException(str(e)) from None
    except MissingDependencyError as e:
        raise QgsProcessingException(str(e)) from None
