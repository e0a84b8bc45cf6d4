"""Maps: the window engine, executors (local, Dask), writers and styles."""
