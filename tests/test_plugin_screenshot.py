"""scripts/screenshots.py: desktop QGIS under Xvfb with the plugin installed from this checkout
grabs the panel with a pixel's recurrence plots, a class map with its legend, and the uncertainty
map with suggested sample points on it; the PNGs have the window size and show something (not a
blank or black window)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("plugin_inspector.png", "plugin_classified.png", "plugin_suggested.png")
#: The map canvas in the 1600×1000 window (the layers panel left of it, the PIMC panel right).
MAP_AREA = (slice(200, 950), slice(340, 960))


def colour_count(img: np.ndarray, hex_colour: str) -> int:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], np.uint8)
    return int(np.all(img[:, :, :3] == rgb, axis=-1).sum())


def test_screenshots(tmp_path):
    from matplotlib.image import imread

    t0 = time.monotonic()
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshots.py"), "--out", str(tmp_path),
                        "--timeout", "85"], capture_output=True, text=True, timeout=90)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    assert seconds < 90
    shots = {}
    for name in NAMES:
        path = tmp_path / name
        assert path.is_file(), name
        img = (imread(path)[:, :, :3] * 255).round().astype(np.uint8)  # PNG → float 0..1
        assert img.shape[:2] == (1000, 1600), (name, img.shape)
        assert img.reshape(-1, 3).std(axis=0).min() > 20, name  # not blank
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 500, name  # a real window, not a flat colour
        shots[name] = img
    # the class map: large areas in the class colours of the sample (winter wheat, water, maize)
    for colour in ("#e3b505", "#4363d8", "#f58231"):
        assert colour_count(shots["plugin_classified.png"], colour) > 2000, colour
    assert colour_count(shots["plugin_inspector.png"], "#e3b505") < 50  # no class map in the first one
    # the suggested points: the uncertainty map instead of the classes, red dots on it
    classified, suggested = (shots[n][MAP_AREA] for n in NAMES[1:])
    assert np.any(classified != suggested, axis=-1).mean() > 0.5
    for colour in ("#e3b505", "#4363d8", "#f58231"):
        assert colour_count(suggested, colour) < 50, colour
    assert colour_count(suggested, "#ff0000") > 1000  # 40 dots of ~70 px each
    assert colour_count(classified, "#ff0000") < 50
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES)
