"""scripts/screenshots.py: desktop QGIS under Xvfb with the plugin installed from this checkout
grabs the panel with a pixel's recurrence plots, a class map with its legend, the uncertainty
map with suggested sample points on it and (``--phenology``) the panel's phenology map; the PNGs
have the window size and show something (not a blank or black window)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("plugin_inspector.png", "plugin_classified.png", "plugin_suggested.png", "plugin_phenology.png")
#: The map canvas in the 1600×1000 window (the layers panel left of it, the PIMC panel right).
MAP_AREA = (slice(200, 950), slice(340, 960))


def colour_count(img: np.ndarray, hex_colour: str) -> int:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], np.uint8)
    return int(np.all(img[:, :, :3] == rgb, axis=-1).sum())


def test_screenshots(tmp_path):
    from matplotlib.image import imread

    t0 = time.monotonic()
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshots.py"), "--out", str(tmp_path),
                        "--timeout", "100", "--phenology"], capture_output=True, text=True, timeout=105)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    assert seconds < 105
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
    classified, suggested, phenology = (shots[n][MAP_AREA] for n in NAMES[1:])
    assert np.any(classified != suggested, axis=-1).mean() > 0.5
    for colour in ("#e3b505", "#4363d8", "#f58231"):
        assert colour_count(suggested, colour) < 50, colour
    assert colour_count(suggested, "#ff0000") > 1000  # 40 dots of ~70 px each
    assert colour_count(classified, "#ff0000") < 50
    # the phenology map: neither the classes nor the points, the start of season on the viridis ramp
    # (dark purple to teal: blue over red) or nodata (white: no season)
    assert np.any(phenology != classified, axis=-1).mean() > 0.5 and np.any(phenology != suggested, axis=-1).mean() > 0.5
    for colour in ("#e3b505", "#4363d8", "#f58231", "#ff0000"):
        assert colour_count(phenology, colour) < 50, colour
    px = phenology.reshape(-1, 3).astype(int)
    assert (px[:, 2] > px[:, 0] + 20).mean() > 0.4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES)
