"""Reading the inputs: dates, sensor presets, manifests, time series, regions, tables."""
