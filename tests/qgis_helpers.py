"""Helpers shared by the tests that run inside real QGIS (imported lazily: no qgis at import)."""

from __future__ import annotations

import time


def flush_deletes() -> None:
    """Run pending ``deleteLater()`` calls (e.g. those made by a plugin's ``unload()``)."""
    from qgis.PyQt.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()


def wait_for(task, timeout: float = 90.0):
    """Let the task manager run ``task`` and deliver its finished() to this (main) thread."""
    from qgis.PyQt.QtCore import QCoreApplication

    t0 = time.monotonic()
    while not task.done:
        QCoreApplication.processEvents()
        time.sleep(0.005)
        assert time.monotonic() - t0 < timeout, "the task did not finish"
    return task
