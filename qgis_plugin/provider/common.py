"""What every PIMC algorithm shares: its names and help stated as class attributes, the source
parameters and the other parameters several algorithms take, opening the series from them, and
turning core errors into one-line Processing errors."""

from __future__ import annotations

import contextlib
from typing import Iterator

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .. import source
from ..bootstrap import MissingDependencyError, import_core
from ..compat import FILE_BEHAVIOR_FILE, FILE_BEHAVIOR_FOLDER, FLAG_ADVANCED, NUMBER_DOUBLE, NUMBER_INTEGER
from .provider import PimcIcon

SOURCE = "SOURCE"
SOURCE_FOLDER = "SOURCE_FOLDER"
SAR = "SAR"
SOURCE_LABEL = "Time series: a manifest (.yaml) or a folder path — this, or a folder picked below"
SOURCE_FOLDER_LABEL = "…or a folder of dated rasters / date folders, instead of the above"
SENSOR = "SENSOR"
BANDS = "BANDS"
INDICES = "INDICES"
BLOCK = "BLOCK"
AUTO = "auto"


def advanced(param):
    """Mark a parameter as advanced; return it."""
    param.setFlags(param.flags() | FLAG_ADVANCED)
    return param


def file_parameter(name: str, description: str, file_filter: str | None = None, *, optional: bool = False,
                   folder: bool = False) -> QgsProcessingParameterFile:
    """A file (``folder``: a folder) parameter; ``file_filter`` like "PIMC model (*.pimc);;All files (*)"."""
    kwargs = {} if file_filter is None else {"fileFilter": file_filter}
    return QgsProcessingParameterFile(name, description, behavior=FILE_BEHAVIOR_FOLDER if folder else FILE_BEHAVIOR_FILE,
                                      optional=optional, **kwargs)


def number_parameter(name: str, description: str, default: float, minimum: float | None = None,
                     maximum: float | None = None, *, double: bool = False) -> QgsProcessingParameterNumber:
    """An integer (``double``: a real) parameter with its default and optional bounds."""
    bounds = {k: v for k, v in (("minValue", minimum), ("maxValue", maximum)) if v is not None}
    return QgsProcessingParameterNumber(name, description, type=NUMBER_DOUBLE if double else NUMBER_INTEGER,
                                        defaultValue=default, **bounds)


def indices_parameter() -> QgsProcessingParameterString:
    """INDICES: comma-separated index names, NDVI, EVI and SAVI by default."""
    return QgsProcessingParameterString(
        INDICES, "Indices, comma-separated (e.g. ndvi,evi,savi,evi2)", defaultValue="ndvi,evi,savi",
    )


def block_parameter() -> QgsProcessingParameterNumber:
    """BLOCK (advanced): the block size of the reads and writes, 256 by default."""
    return advanced(number_parameter(BLOCK, "Block size (pixels) for reading and writing", 256, 16, 8192))


def polygon_type():
    """The source type of a polygon layer parameter (QGIS >= 3.36 / before)."""
    new = getattr(Qgis, "ProcessingSourceType", None)
    if new is not None and hasattr(new, "VectorPolygon"):
        return new.VectorPolygon
    return QgsProcessing.SourceType.TypeVectorPolygon


class PimcAlgorithm(PimcIcon, QgsProcessingAlgorithm):
    """Base class: names and help from class attributes, icon, source parameters, core errors →
    QgsProcessingException. A subclass states :attr:`NAME` (the id after ``pimc:``),
    :attr:`DISPLAY_NAME`, :attr:`HELP` and, outside *Time series*, :attr:`GROUP` / :attr:`GROUP_ID`."""

    NAME = DISPLAY_NAME = HELP = ""
    GROUP, GROUP_ID = "Time series", "timeseries"

    def createInstance(self):  # noqa: N802
        return type(self)()

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:  # noqa: N802
        return self.DISPLAY_NAME

    def shortHelpString(self) -> str:  # noqa: N802
        return self.HELP

    def group(self) -> str:
        return self.GROUP

    def groupId(self) -> str:  # noqa: N802
        return self.GROUP_ID

    # ------------------------------------------------------------------ source parameters
    def add_source_parameters(self) -> None:
        """SOURCE (manifest or folder path), SOURCE_FOLDER (folder picker), SENSOR, BANDS, SAR (a
        Sentinel-1 source on the same grid, optional)."""
        # "All files (*)" last: a folder path typed in SOURCE is accepted too (the default filter,
        # "All files (*.*)", would reject any path without a dot)
        # one of the two is needed: Processing has no "one of" parameters, so both are optional
        # (marked "[optional]" by QGIS) and their names say which one to give
        self.addParameter(file_parameter(SOURCE, SOURCE_LABEL, "Manifest (*.yaml *.yml);;All files (*)", optional=True))
        self.addParameter(file_parameter(SOURCE_FOLDER, SOURCE_FOLDER_LABEL, optional=True, folder=True))
        self.addParameter(QgsProcessingParameterEnum(
            SENSOR, "Sensor preset", options=[AUTO] + source.sensor_names(),
            defaultValue=AUTO, usesStaticStrings=True,
        ))
        self.addParameter(advanced(QgsProcessingParameterString(
            BANDS, "Band mapping inside multi-band files (e.g. blue=1,red=3,nir=4)", optional=True,
        )))
        self.addParameter(advanced(file_parameter(
            SAR, "Sentinel-1 source on the same grid, read beside the series (manifest .yaml or folder)",
            "Manifest (*.yaml *.yml);;All files (*)", optional=True)))

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
        return source.SourceSpec(path=path or folder, sensor=None if sensor == AUTO else sensor, bands=bands,
                                 sar=self.parameterAsFile(parameters, SAR, context) or None)

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

    def check_model_fits(self, spec, ts) -> str:
        """Refuse a model that does not fit the series (bands, season and date grid, pixel size) in
        :meth:`checkParameterValues`, before the algorithm runs; return the line that says it fits.

        Raises:
            PimcError: one sentence naming the model and the source.
        """
        return source.check_model(spec, ts)


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
