"""The sections of the PIMC panel, one widget each (:mod:`qgis_plugin.dock` puts them together):
:mod:`.source_section` (the time series and the model file), :mod:`.inspector_section`,
:mod:`.maps_section`, :mod:`.fit_section`; :mod:`.layers_table` (project layers as a series) and
:mod:`.common` (status lines, progress, error reporting) serve them."""
