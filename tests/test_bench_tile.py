"""benchmarks.bench_tile: a 64² stack through `pimc classify --workers 2`, its memory sampled, and the
tile projection's arithmetic."""

from __future__ import annotations

import math

import pytest

from benchmarks import bench_tile


def test_projection_arithmetic():
    # 1e-4 worker-s/px at 12 dates, cost ∝ dates^1: ×3 at 36 dates
    p = bench_tile.project(1e-4, 1e-6, 2e-6, 5.0, 1.0, 12, size=1000, to_dates=36, block=256, workers=(1, 4, 1000))
    assert p["windows"] == 16  # ceil(1000 / 256) = 4 → 4 × 4
    assert p["date_scale"] == pytest.approx(3.0)
    assert p["worker_seconds"] == pytest.approx(3e-4 * 1e6)
    assert p["window_seconds"] == pytest.approx(3e-4 * 256 * 256)
    rows = {r["workers"]: r for r in p["rows"]}
    assert rows[1]["seconds"] == pytest.approx(5.0 + 300.0 + 2.0)
    assert rows[4]["seconds"] == pytest.approx(5.0 + 75.0 + 2.0) and not rows[4]["client_bound"]
    # 1000 workers: 0.3 s of compute each, but the client writes for 1 s
    assert rows[1000]["seconds"] == pytest.approx(5.0 + 1.0 + 2.0) and rows[1000]["client_bound"]
    # a Sentinel-2 tile in 256² windows
    assert bench_tile.project(1e-4, 0, 0, 0, 1.0, 36)["windows"] == 43 * 43


def test_date_exponent():
    assert bench_tile.date_exponent(1.0, 2.5, 12, 30) == pytest.approx(1.0)
    assert bench_tile.date_exponent(1.0, 2.5**2, 12, 30) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        bench_tile.date_exponent(0.0, 1.0, 12, 30)


def test_bench_tile_small_run(tmp_path):
    res = bench_tile.run(size=64, dates=8, workers=2, scale_size=48, scale_dates=(6, 8),
                         model="builtin:nearest-centroid", root=str(tmp_path))
    big = res["big"]
    assert big["pixels"] == 64 * 64 and big["windows"] == 1 and big["workers"] == 2
    assert "--workers 2" in big["command"] and "pixels/s" in big["summary"]
    assert (tmp_path / "maps" / "64_8_w2" / "classes.tif").exists()
    # the client and both Dask worker processes were sampled
    assert big["memory"]["client_mib"] > 50 and len(big["memory"]["workers_mib"]) == 2
    assert big["memory"]["tree_mib"] >= big["memory"]["client_mib"] + sum(big["memory"]["workers_mib"]) * 0.5
    assert all(big["stages"][k] > 0 for k in ("read", "indices", "predict", "write"))
    # the projection follows from the measured run by project()
    pp = bench_tile.per_pixel(big)
    again = bench_tile.project(pp["compute"], pp["write"], pp["finalize"], big["seconds"] - big["run_seconds"],
                               res["exponents"]["compute"], 8)
    assert res["projection"]["rows"] == again["rows"]
    assert math.isfinite(res["exponents"]["compute"])
    text = bench_tile.markdown(res)
    assert "10980² px × 36 dates" in text and "1,849 windows" in text and "not measured" in text
