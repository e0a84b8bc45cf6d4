"""The panel at a narrow dock width inside real QGIS: every check box, button and spin box is
inside the visible width and not cut off (rows wrap); no red error before the user did
anything; the progress bar and Cancel stay hidden when a section is collapsed and expanded
again, and no stale 100 % is left after a run."""

from __future__ import annotations

import pytest

from tests.qgis_helpers import flush_deletes

#: Narrower than the width QGIS gives a new dock in its right area.
NARROW = 300


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    import qgis_plugin

    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    plugin.show_panel(True)
    d = plugin.dock
    yield d
    plugin.unload()
    flush_deletes()


def settle(seconds: float = 0.0) -> None:
    import time

    from qgis.PyQt.QtWidgets import QApplication

    t0 = time.monotonic()
    while True:
        QApplication.processEvents()
        if time.monotonic() - t0 >= seconds:
            return
        time.sleep(0.02)


def clipped_widgets(dock) -> list[str]:
    """The visible controls of the panel that reach past the visible width or are narrower than
    their minimum (text cut off)."""
    from qgis.PyQt.QtCore import QPoint
    from qgis.PyQt.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLabel, QLineEdit

    scroll = dock.widget()
    viewport = scroll.viewport()
    out = []
    for w in scroll.widget().findChildren((QAbstractButton, QAbstractSpinBox, QComboBox, QLabel)):
        if not w.isVisibleTo(scroll.widget()) or w.width() == 0 or isinstance(w.parent(), QLineEdit):
            continue  # (a line edit's own clear button is sized by QGIS)
        right = w.mapTo(viewport, QPoint(w.width(), 0)).x()
        name = (w.objectName() or getattr(w, "text", lambda: "")() or type(w).__name__) + \
            f" in {w.parent().objectName() or type(w.parent()).__name__}"
        if right > viewport.width() + 1:
            out.append(f"{name}: right edge {right} > {viewport.width()}")
        elif not (isinstance(w, QLabel) and w.wordWrap()) and w.width() < w.minimumSizeHint().width():
            out.append(f"{name}: {w.width()} px < {w.minimumSizeHint().width()} px")
    return out


def test_no_clipping_at_a_narrow_dock(dock):
    dock.setFloating(True)
    for box in (dock.inspector_box, dock.maps_box, dock.fit_box):
        box.setCollapsed(False)
    dock.resize(NARROW, 1400)
    dock.show()
    settle(0.1)
    body = dock.widget().widget()
    assert body.width() <= dock.widget().viewport().width()  # nothing beyond the right edge
    assert clipped_widgets(dock) == []
    for w in (dock.source_box.radar_row.sar_widget, dock.maps_box.query_box.query_edit,
              dock.maps_box.query_box.query_button):  # the radar field and the query box fit it too
        assert w.isVisibleTo(body) and w.width() >= w.minimumSizeHint().width()
    k = dock.k_spin
    assert k.isVisibleTo(body) and k.width() >= k.minimumSizeHint().width()
    # Clusters and its k share a line even when the products wrap
    clusters = dock.product_checks["clusters"]
    assert abs(clusters.mapTo(body, clusters.rect().center()).y() - k.mapTo(body, k.rect().center()).y()) < 4


def test_no_red_message_before_the_user_did_anything(dock):
    from qgis_plugin.panel.common import ERR_STYLE

    settle(0.8)  # past the source check's debounce
    for label in (dock.status_label, dock.pixel_label, dock.map_status, dock.fit_status):
        assert ERR_STYLE not in label.styleSheet(), label.text()


def test_a_source_gone_since_the_last_session_is_not_restored(qgis_iface, qgis_new_project, tmp_path):
    """The last session's source was deleted (a temporary folder, an unplugged disk): the panel
    opens with an empty source and no red message, instead of an error nobody caused."""
    from qgis.core import QgsSettings

    import qgis_plugin
    from qgis_plugin.panel.common import ERR_STYLE, SETTINGS

    gone = tmp_path / "gone" / "manifest.yaml"
    QgsSettings().setValue(SETTINGS + "source", str(gone))
    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    plugin.show_panel(True)
    try:
        d = plugin.dock
        settle(0.8)
        assert d.source_widget.filePath() in ("", None)
        assert ERR_STYLE not in d.status_label.styleSheet(), d.status_label.text()
    finally:
        plugin.unload()
        flush_deletes()


def test_progress_stays_hidden_across_collapse_and_expand(dock):
    dock.setFloating(True)
    dock.resize(NARROW, 1200)
    dock.show()
    for box, bar, cancel in ((dock.maps_box, dock.map_progress, dock.map_cancel_button),
                             (dock.fit_box, dock.fit_progress, dock.fit_cancel_button)):
        box.setCollapsed(False)
        settle()
        assert not bar.isVisibleTo(box) and not cancel.isVisibleTo(box)
        box.setCollapsed(True)
        settle()
        box.setCollapsed(False)
        settle()
        assert not bar.isVisibleTo(box) and not cancel.isVisibleTo(box)
        box.setCollapsed(False)  # expanding an expanded section: QGIS shows its children again
        settle()
        assert not bar.isVisibleTo(box) and not cancel.isVisibleTo(box)
    # a section collapsed while the panel was hidden, then shown and expanded
    dock.hide()
    dock.fit_box.setCollapsed(True)
    dock.show()
    settle()
    dock.fit_box.setCollapsed(False)
    settle()
    assert not dock.fit_progress.isVisibleTo(dock.fit_box) and not dock.fit_cancel_button.isVisibleTo(dock.fit_box)


def test_no_stale_progress_after_a_failed_run(dock, tiny_sample):
    """A run that fails after its progress reached 100 %: the bar is hidden and back at 0,
    also after the section is collapsed and expanded."""
    from qgis_plugin.panel import common

    box = dock.maps_box
    box.setCollapsed(False)
    common.show_running(dock.map_progress, dock.map_cancel_button, True)
    dock.map_progress.setValue(100)
    common.show_running(dock.map_progress, dock.map_cancel_button, False)
    common.set_status(dock.map_status, "the map run failed", ok=False)
    box.setCollapsed(True)
    box.setCollapsed(False)
    settle()
    assert not dock.map_progress.isVisibleTo(box) and dock.map_progress.value() == 0
    assert not dock.map_cancel_button.isVisibleTo(box)
    # while a run goes on, an expand shows the bar again
    common.show_running(dock.map_progress, dock.map_cancel_button, True)
    box.setCollapsed(True)
    box.setCollapsed(False)
    settle()
    assert dock.map_progress.isVisibleTo(box) and dock.map_cancel_button.isVisibleTo(box)
    common.show_running(dock.map_progress, dock.map_cancel_button, False)
