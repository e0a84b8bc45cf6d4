"""Recurrence plots: equality with pyts.image.RecurrencePlot (the reference), shapes, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from pyts.image import RecurrencePlot

from pimc_core.errors import ConfigError, InputError
from pimc_core.series import rp_chunks, rp_distances, rp_fused, rp_tensors, rp_threads, rp_thresholds
from pimc_core.series.recurrence import (
    RecurrencePlotConfig,
    recurrence_plot,
    stack_recurrence_plots,
    trajectory_params,
)

TOL = 1e-5
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _pyts(x2d: np.ndarray, **kw) -> np.ndarray:
    return RecurrencePlot(**kw).transform(x2d)


def _series(n: int, t: int, dtype=np.float32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, t)).astype(dtype)


def _patch_where_used(monkeypatch, name, value) -> None:
    """Replace ``name`` in every recurrence-plot module that defines or imports it."""
    mods = [m for m in (rp_chunks, rp_distances, rp_fused, rp_tensors, rp_threads, rp_thresholds) if hasattr(m, name)]
    assert mods, name
    for m in mods:
        monkeypatch.setattr(m, name, value)


def _assert_same(got: np.ndarray, ref: np.ndarray) -> None:
    assert got.dtype == np.float32
    assert got.shape == ref.shape
    assert float(np.max(np.abs(got.astype(np.float64) - ref), initial=0.0)) <= TOL


# --------------------------------------------------------------------------------------------
# equality with pyts
# --------------------------------------------------------------------------------------------

THRESHOLDS = [None, "point", "distance", 0.8, 2]


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("dimension,time_delay", [(1, 1), (3, 1), (2, 4), (0.2, 1), (3, 0.1), (0.15, 0.07)])
@pytest.mark.parametrize("length", [7, 13, 46])
def test_matches_pyts(threshold, dimension, time_delay, length):
    x = _series(9, length, seed=length)
    try:
        ref = _pyts(x, dimension=dimension, time_delay=time_delay, threshold=threshold)
    except ValueError:  # too few samples for this embedding: we must refuse too
        with pytest.raises(ConfigError):
            recurrence_plot(x, dimension, time_delay, threshold)
        return
    _assert_same(recurrence_plot(x, dimension, time_delay, threshold), ref)


@pytest.mark.parametrize("threshold", ["point", "distance"])
@pytest.mark.parametrize("percentage", [0, 1, 10, 37.5, 50, 99.9, 100])
@pytest.mark.parametrize("dimension", [1, 2])
def test_percentages_match_pyts(threshold, percentage, dimension):
    x = _series(12, 21, seed=3)
    ref = _pyts(x, dimension=dimension, threshold=threshold, percentage=percentage)
    got = recurrence_plot(x, dimension=dimension, threshold=threshold, percentage=percentage)
    np.testing.assert_array_equal(got, ref.astype(np.float32))  # binary: must be identical


@pytest.mark.parametrize("length", [5, 12, 46])
@pytest.mark.parametrize("quantised", [False, True])
def test_point_threshold_every_rank_regime(length, quantised):
    """'point' sorts only the pairs of small gap in sorted order for low percentiles (m == 1)
    and all pairs otherwise: identical to pyts across the whole percentage range, with ties."""
    rng = np.random.default_rng(length)
    x = rng.standard_normal((16, length))
    if quantised:
        x = np.round(x * 2) / 2
    for p in [0, 0.5, 2, 5, 10, 12.5, 20, 30, 37.5, 50, 75, 99, 100]:
        got = recurrence_plot(x.astype(np.float32), threshold="point", percentage=p)
        ref = _pyts(x.astype(np.float32), threshold="point", percentage=p)
        np.testing.assert_array_equal(got, ref.astype(np.float32), err_msg=f"percentage={p}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dimension,time_delay", [(1, 1), (2, 1), (3, 2), (8, 1), (9, 2), (12, 3)])
def test_bit_identical_distances(dtype, dimension, time_delay):
    """Unthresholded plots are pyts's values rounded to float32, to the bit (both dtypes and
    both of numpy's summation orders, m >= 8 with tau == 1 being pairwise)."""
    x = _series(6, 46, dtype=dtype, seed=dimension)
    ref = _pyts(x, dimension=dimension, time_delay=time_delay)
    np.testing.assert_array_equal(recurrence_plot(x, dimension, time_delay), ref.astype(np.float32))


@pytest.mark.parametrize("threshold", [None, "point", "distance", 0.5])
def test_float64_and_integer_inputs(threshold):
    x64 = _series(8, 30, dtype=np.float64, seed=5)
    _assert_same(recurrence_plot(x64, threshold=threshold), _pyts(x64, threshold=threshold))
    xi = np.random.default_rng(1).integers(-50, 50, size=(8, 30))
    _assert_same(recurrence_plot(xi, 2, 3, threshold=threshold),
                 _pyts(xi, dimension=2, time_delay=3, threshold=threshold))


def test_ties_and_constant_series_match_pyts():
    # quantised values (many equal distances) and constant rows (all-zero plots)
    rng = np.random.default_rng(2)
    x = np.round(rng.standard_normal((10, 25)) * 3).astype(np.float32) / 4
    x[0] = 1.5
    x[1, :12] = 0.25
    for kw in [dict(threshold="point"), dict(threshold="point", percentage=50),
               dict(threshold="distance", percentage=30), dict(threshold=0.5), dict(dimension=3)]:
        np.testing.assert_array_equal(recurrence_plot(x, **kw), _pyts(x, **kw).astype(np.float32))


def test_numpy_scalar_parameters_match_pyts():
    x = _series(5, 40, seed=9)
    kw = dict(dimension=np.int64(2), time_delay=np.float32(0.05), threshold=np.float64(1.1),
              percentage=np.float32(12.5))
    _assert_same(recurrence_plot(x, **kw), _pyts(x, **kw))
    kw = dict(dimension=np.float64(0.1), threshold="point", percentage=np.int32(20))
    _assert_same(recurrence_plot(x, **kw), _pyts(x, **kw))


@pytest.mark.parametrize("lead", [(), (1,), (2, 3)])
@pytest.mark.parametrize("as_torch", [False, True])
def test_leading_batch_dims_numpy_and_torch(lead, as_torch):
    x = _series(max(1, math.prod(lead)), 17, seed=len(lead)).reshape(*lead, 17)
    ref = _pyts(x.reshape(-1, 17), dimension=2, threshold="point").reshape(*lead, 16, 16)
    inp = torch.from_numpy(x) if as_torch else x
    got = recurrence_plot(inp, dimension=2, threshold="point")
    if as_torch:
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.device == inp.device
        got = got.numpy()
    else:
        assert isinstance(got, np.ndarray)
    assert got.shape == (*lead, 16, 16)
    _assert_same(got, ref)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_in_torch_out_on_device(device):
    x = torch.randn(4, 3, 20, dtype=torch.float64, device=device, requires_grad=True)
    for kw in [dict(), dict(threshold="point"), dict(dimension=2, threshold="distance")]:
        got = recurrence_plot(x, **kw)
        assert got.device == x.device and got.dtype == torch.float32 and not got.requires_grad
        ref = _pyts(x.detach().cpu().numpy().reshape(12, 20), **kw).reshape(4, 3, *got.shape[-2:])
        _assert_same(got.cpu().numpy(), ref)


@pytest.mark.parametrize("threads", [1, 2])
def test_chunking_is_invisible(monkeypatch, threads):
    x = _series(101, 33, seed=4)
    want = {(m, thr): recurrence_plot(x, m, 1, thr) for m in (1, 2) for thr in (None, "point")}
    monkeypatch.setattr(rp_chunks, "CPU_CHUNK_BYTES", 1)  # one series per chunk
    monkeypatch.setattr(rp_chunks, "MIN_CHUNK_ROWS", {"point": 1, "other": 1, "fused": 1})
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for (m, thr), ref in want.items():
            np.testing.assert_array_equal(recurrence_plot(x, m, 1, thr), ref)
    finally:
        torch.set_num_threads(prev)


def test_torch_fallback_paths_match(monkeypatch):
    """The torch-only code paths (used on CUDA) agree with the CPU fast paths."""
    x = _series(20, 31, seed=8)
    want = {kw: recurrence_plot(x, *kw) for kw in [(1, 1, "point"), (3, 2, "point"), (2, 1, None)]}
    _patch_where_used(monkeypatch, "numpy_fast_path", lambda t: False)
    for kw, ref in want.items():
        got = recurrence_plot(x, *kw)
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
        if kw[0] == 1:  # no sqrt involved: identical
            np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_fused_cpu_kernel_is_used_and_identical(monkeypatch, threads, dtype):
    """The numba loop for |x_i - x_j| (m == 1, no threshold, >= _FUSED_MIN_ROWS series) gives
    exactly the torch kernels' result and pyts's, for contiguous and strided input, with and
    without ``out=``."""
    assert rp_fused.fused_abs_diff() is not None, "numba is a dependency (pyts needs it): the fused kernel must compile"
    n = rp_fused.FUSED_MIN_ROWS + 37
    base = _series(n, 40, np.float64, seed=11) * 50
    x = base.astype(dtype)
    strided = np.asfortranarray(x)[:, ::2]  # not C-contiguous
    calls = []
    real = rp_fused.fused_abs_diff()
    _patch_where_used(monkeypatch, "fused_abs_diff", lambda: (lambda a, o: (calls.append(len(a)), real(a, o))))
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fused = recurrence_plot(x)
        fused_strided = recurrence_plot(strided)
        buf = np.full((n, 40, 40), np.nan, np.float32)
        assert recurrence_plot(torch.from_numpy(x), out=buf) is not None
        assert sum(calls) == 3 * n  # every series went through the fused loop
        _patch_where_used(monkeypatch, "fused_abs_diff", lambda: None)  # the torch kernels
        np.testing.assert_array_equal(fused, recurrence_plot(x))
        np.testing.assert_array_equal(fused_strided, recurrence_plot(strided))
        np.testing.assert_array_equal(buf, fused)
    finally:
        torch.set_num_threads(prev)
    np.testing.assert_array_equal(fused, _pyts(x).astype(np.float32))
    # below the size threshold the torch kernels run (nothing to import or load for one pixel)
    calls.clear()
    _patch_where_used(monkeypatch, "fused_abs_diff", lambda: (lambda a, o: calls.append(len(a))))
    recurrence_plot(x[:rp_fused.FUSED_MIN_ROWS - 1])
    assert calls == []


def test_without_numba_the_torch_kernels_run(monkeypatch):
    monkeypatch.setenv("PIMC_NO_NUMBA", "1")
    rp_fused.fused_abs_diff.cache_clear()
    try:
        assert rp_fused.fused_abs_diff() is None
        x = _series(rp_fused.FUSED_MIN_ROWS + 1, 46, seed=3)
        np.testing.assert_array_equal(recurrence_plot(x), _pyts(x).astype(np.float32))
    finally:
        monkeypatch.delenv("PIMC_NO_NUMBA")
        rp_fused.fused_abs_diff.cache_clear()


def test_empty_batch():
    assert recurrence_plot(np.zeros((0, 10), np.float32), 2).shape == (0, 9, 9)
    assert stack_recurrence_plots(np.zeros((0, 3, 10)), size=4).shape == (0, 3, 4, 4)


# --------------------------------------------------------------------------------------------
# stacking and resizing
# --------------------------------------------------------------------------------------------


def test_stack_channels_shape_and_values():
    x = _series(5 * 3, 24, seed=11).reshape(5, 3, 24)
    got = stack_recurrence_plots(x, dimension=2, time_delay=2, threshold="distance", percentage=25)
    assert got.shape == (5, 3, 22, 22) and got.dtype == np.float32
    for c in range(3):
        ref = _pyts(x[:, c], dimension=2, time_delay=2, threshold="distance", percentage=25)
        np.testing.assert_array_equal(got[:, c], ref.astype(np.float32))
    t = stack_recurrence_plots(torch.from_numpy(x), dimension=2, time_delay=2)
    assert isinstance(t, torch.Tensor) and t.shape == (5, 3, 22, 22)


@pytest.mark.parametrize("size", [8, 23, 40])
def test_resize_shape_and_matches_interpolate(size):
    x = _series(4 * 2, 23, seed=12).reshape(4, 2, 23)
    got = stack_recurrence_plots(x, size=size)
    assert got.shape == (4, 2, size, size) and got.dtype == np.float32
    native = torch.from_numpy(stack_recurrence_plots(x))
    ref = torch.nn.functional.interpolate(native, size=(size, size), mode="bilinear",
                                          align_corners=False, antialias=size < 23)
    np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [5, 46, 64])
def test_resizing_a_constant_plot_keeps_it_constant(size):
    x = np.full((3, 2, 40), 0.3, dtype=np.float32)
    x[1, 1] = -2.0
    zeros = stack_recurrence_plots(x, size=size)  # constant series: distance 0 everywhere
    np.testing.assert_allclose(zeros, 0.0, atol=1e-7)
    ones = stack_recurrence_plots(x + np.random.default_rng(0).normal(0, 0.01, x.shape).astype(np.float32),
                                  threshold=10.0, size=size)  # every distance < 10: all ones
    np.testing.assert_allclose(ones, 1.0, atol=1e-6)


def test_resize_to_native_size_is_identity():
    x = _series(6, 30, seed=13).reshape(2, 3, 30)
    np.testing.assert_array_equal(stack_recurrence_plots(x, dimension=3, size=28),
                                  stack_recurrence_plots(x, dimension=3))


# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------


def test_config_apply_and_round_trip():
    cfg = RecurrencePlotConfig(dimension=2, time_delay=0.1, threshold="point", percentage=20, size=16)
    d = cfg.to_dict()
    assert d == {"dimension": 2, "time_delay": 0.1, "threshold": "point", "percentage": 20, "size": 16}
    again = RecurrencePlotConfig.from_dict(json.loads(json.dumps(d)))
    assert again == cfg and isinstance(again.dimension, int)
    x = _series(6, 30, seed=14).reshape(3, 2, 30)
    np.testing.assert_array_equal(cfg.apply(x), stack_recurrence_plots(x, **d))
    assert cfg.image_size(30) == 16 and RecurrencePlotConfig(dimension=2).image_size(30) == 29
    assert RecurrencePlotConfig.from_dict({}) == RecurrencePlotConfig()
    assert RecurrencePlotConfig(dimension=np.int64(3)).to_dict()["dimension"] == 3
    with pytest.raises(Exception):
        cfg.dimension = 3  # frozen


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="dimensions.*thresh|thresh.*dimensions"):
        RecurrencePlotConfig.from_dict({"dimensions": 2, "thresh": 0.1, "size": 8})
    with pytest.raises(ConfigError, match="mapping"):
        RecurrencePlotConfig.from_dict([("size", 8)])


@pytest.mark.parametrize("kw,name", [
    (dict(dimension=0), "dimension"), (dict(time_delay=1.5), "time_delay"),
    (dict(threshold="near"), "threshold"), (dict(threshold=0), "threshold"),
    (dict(percentage=101), "percentage"), (dict(size=0), "size"), (dict(size=2.0), "size"),
])
def test_config_validates_at_construction(kw, name):
    with pytest.raises(ConfigError, match=name):
        RecurrencePlotConfig(**kw)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw,name", [
    (dict(dimension=0), "dimension"),
    (dict(dimension=-2), "dimension"),
    (dict(dimension=21), "dimension"),           # > T
    (dict(dimension=1.0), "dimension"),          # float must be in (0, 1), as in pyts
    (dict(dimension=float("nan")), "dimension"),
    (dict(dimension="2"), "dimension"),
    (dict(dimension=True), "dimension"),
    (dict(dimension=None), "dimension"),
    (dict(time_delay=0), "time_delay"),
    (dict(time_delay=21), "time_delay"),
    (dict(time_delay=1.2), "time_delay"),
    (dict(time_delay=[1]), "time_delay"),
    (dict(dimension=5, time_delay=5), "dimension"),   # (5 - 1) * 5 >= 20: no trajectory
    (dict(dimension=0.5, time_delay=0.9), "time_delay"),
    (dict(threshold=0), "threshold"),
    (dict(threshold=-0.1), "threshold"),
    (dict(threshold=float("nan")), "threshold"),
    (dict(threshold="Point"), "threshold"),
    (dict(threshold="nearest"), "threshold"),
    (dict(threshold=[0.1]), "threshold"),
    (dict(percentage=-1), "percentage"),
    (dict(percentage=100.5), "percentage"),
    (dict(percentage=float("nan")), "percentage"),
    (dict(percentage="10"), "percentage"),
])
def test_bad_parameters_raise_config_error_naming_them(kw, name):
    x = _series(3, 20)
    with pytest.raises(ConfigError, match=name):
        recurrence_plot(x, **kw)
    with pytest.raises(ConfigError, match=name):
        stack_recurrence_plots(x[None], **kw)


def test_pyts_rejects_what_we_reject():
    """Spot-check that the refusals mirror pyts's (where pyts refuses at all)."""
    x = _series(3, 20)
    for kw in [dict(dimension=0), dict(dimension=21), dict(dimension=1.0), dict(time_delay=0),
               dict(dimension=5, time_delay=5), dict(threshold=0), dict(threshold="nearest"),
               dict(percentage=-1), dict(percentage=100.5)]:
        with pytest.raises((ValueError, TypeError)):
            _pyts(x, **kw)
        with pytest.raises(ConfigError):
            recurrence_plot(x, **kw)
    # the largest accepted values agree
    _assert_same(recurrence_plot(x, dimension=20), _pyts(x, dimension=20))
    _assert_same(recurrence_plot(x, time_delay=20), _pyts(x, time_delay=20))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("as_torch", [False, True])
def test_non_finite_input_raises_input_error(bad, as_torch):
    x = _series(4, 12)
    x[2, 5] = bad
    inp = torch.from_numpy(x) if as_torch else x
    with pytest.raises(InputError, match="NaN|infinite") as err:
        recurrence_plot(inp)
    assert "1 of 4 series" in str(err.value) and "gap" in str(err.value)
    with pytest.raises(InputError):
        stack_recurrence_plots(inp[None])


@pytest.mark.parametrize("x", [np.zeros((3, 0)), np.float32(1.0), np.array(["a", "b"]),
                               np.ones((2, 5), dtype=bool), np.ones((2, 5), dtype=complex)])
def test_bad_inputs_raise_input_error(x):
    with pytest.raises(InputError, match="'x'"):
        recurrence_plot(x)


def test_stack_requires_three_dims():
    with pytest.raises(InputError, match=r"\(N, C, T\)"):
        stack_recurrence_plots(np.zeros((4, 10)))


def test_trajectory_params():
    assert trajectory_params(46) == (1, 1, 46)
    assert trajectory_params(46, 3, 2) == (3, 2, 42)
    assert trajectory_params(46, 0.1, 0.05) == (5, 3, 34)  # ceil(4.6), ceil(2.3)
    with pytest.raises(ConfigError, match="dimension"):
        trajectory_params(10, 11)


# --------------------------------------------------------------------------------------------
# out= (preallocated, reused output buffers)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [None, "point", "distance", 0.7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_streaming_matches_pyts(threshold, dtype):
    """Batches streamed through one reused buffer (last batch smaller: a leading slice)."""
    x = _series(700, 46, dtype=dtype, seed=21)
    buf = np.full((256, 45, 45), np.nan, dtype=np.float32)
    for start in range(0, len(x), 256):
        xb = x[start:start + 256]
        got = recurrence_plot(xb, dimension=2, threshold=threshold, out=buf[:len(xb)])
        assert got.base is buf or got is buf  # the buffer itself (a view of it), no copy
        _assert_same(got, _pyts(xb, dimension=2, threshold=threshold))


@pytest.mark.parametrize("as_torch", [False, True])
def test_out_returns_out_and_equals_fresh_result(as_torch):
    x = _series(2 * 3 * 5, 19, seed=22).reshape(2, 3, 5, 19)
    inp = torch.from_numpy(x) if as_torch else x
    buf = torch.full((2, 3, 5, 19, 19), -1.0) if as_torch else np.full((2, 3, 5, 19, 19), -1.0, np.float32)
    for kw in [dict(), dict(threshold="point"), dict(dimension=3, time_delay=2)]:
        side = 19 - ((kw.get("dimension", 1) - 1) * kw.get("time_delay", 1))
        o = buf[..., :side, :side] if side == 19 else (
            torch.empty((2, 3, 5, side, side)) if as_torch else np.empty((2, 3, 5, side, side), np.float32))
        got = recurrence_plot(inp, out=o, **kw)
        assert got is o
        fresh = recurrence_plot(inp, **kw)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(fresh))


def test_out_numpy_buffer_for_cpu_tensor_and_tensor_buffer_for_numpy():
    x = _series(40, 30, seed=23)
    ref = _pyts(x, threshold="point")
    o = np.empty((40, 30, 30), np.float32)
    assert recurrence_plot(torch.from_numpy(x), threshold="point", out=o) is o
    _assert_same(o, ref)
    t = torch.empty(40, 30, 30)
    assert recurrence_plot(x, threshold="point", out=t) is t
    _assert_same(t.numpy(), ref)


@pytest.mark.parametrize("device", DEVICES)
def test_out_on_device(device):
    x = torch.randn(300, 25, device=device)
    o = torch.empty(300, 24, 24, device=device)
    assert recurrence_plot(x, 2, threshold="distance", out=o) is o
    _assert_same(o.cpu().numpy(), _pyts(x.cpu().numpy(), dimension=2, threshold="distance"))


@pytest.mark.parametrize("size", [None, 22, 12, 30])
@pytest.mark.parametrize("threshold", [None, "point"])
def test_stack_out_matches_fresh(size, threshold):
    x = _series(300 * 3, 23, seed=24).reshape(300, 3, 23)
    fresh = stack_recurrence_plots(x, dimension=2, threshold=threshold, size=size)
    buf = np.full((512, *fresh.shape[1:]), np.nan, np.float32)
    got = stack_recurrence_plots(x, dimension=2, threshold=threshold, size=size, out=buf[:300])
    assert got.base is buf
    np.testing.assert_array_equal(got, fresh)
    assert np.isnan(buf[300:]).all()  # nothing written past the slice
    t = torch.from_numpy(np.ascontiguousarray(buf[:300]))
    got = stack_recurrence_plots(torch.from_numpy(x), dimension=2, threshold=threshold, size=size, out=t)
    assert got is t
    np.testing.assert_array_equal(t.numpy(), fresh)


def test_out_empty_batch():
    o = np.empty((0, 9, 9), np.float32)
    assert recurrence_plot(np.zeros((0, 10), np.float32), 2, out=o) is o
    o = np.empty((0, 3, 4, 4), np.float32)
    assert stack_recurrence_plots(np.zeros((0, 3, 10)), size=4, out=o) is o


def _bad_outs():
    good = (6, 20, 20)
    base = np.empty((6, 20, 40), np.float32)
    ro = np.empty(good, np.float32)
    ro.flags.writeable = False
    return [
        (np.empty(good, np.float64), "dtype"),
        (np.empty(good, ">f4"), "dtype"),
        (torch.empty(good, dtype=torch.float64), "dtype"),
        (np.empty((6, 20, 21), np.float32), r"shape \(6, 20, 21\), expected \(6, 20, 20\)"),
        (np.empty((7, 20, 20), np.float32), "shape"),
        (np.empty((6, 400), np.float32), "shape"),
        (torch.empty(6, 20, 20)[None], "shape"),
        (base[:, :, :20], "contiguous"),
        (torch.empty(6, 20, 20).transpose(1, 2), "contiguous"),
        (ro, "read-only"),
        (torch.empty(good, requires_grad=True), "grad"),
        (torch.empty(good, device="meta"), "meta"),
        ([[0.0]], "list"),
        (np.float32(0), "float32"),
    ]


@pytest.mark.parametrize("i", range(len(_bad_outs())))
def test_bad_out_raises_input_error_naming_out(i):
    bad, match = _bad_outs()[i]
    x = _series(6, 20, seed=25)
    with pytest.raises(InputError, match="'out'") as err:
        recurrence_plot(x, out=bad)
    assert err.match(match)
    bad4 = bad[:, None] if isinstance(bad, (np.ndarray, torch.Tensor)) and bad.ndim == 3 else bad
    with pytest.raises(InputError, match="'out'"):
        stack_recurrence_plots(x[:, None], out=bad4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_out_device_mismatch_cuda():
    x = torch.randn(4, 10, device="cuda")
    with pytest.raises(InputError, match="'out' is on cpu"):
        recurrence_plot(x, out=np.empty((4, 10, 10), np.float32))
    with pytest.raises(InputError, match="'out' is on cuda"):
        recurrence_plot(x.cpu(), out=torch.empty(4, 10, 10, device="cuda"))


def test_out_overlapping_input_is_refused():
    mem = torch.zeros(10 * 12 * 12 + 10 * 12)
    x = mem[:10 * 12].view(10, 12)
    with pytest.raises(InputError, match="'out' overlaps"):
        recurrence_plot(x, out=mem[10 * 12 - 1:-1].view(10, 12, 12))
    o = mem[10 * 12:].view(10, 12, 12)  # adjacent, not overlapping: fine
    x.copy_(torch.from_numpy(_series(10, 12, seed=26)))
    assert recurrence_plot(x, out=o) is o
    _assert_same(o.numpy(), _pyts(x.numpy()))


def test_out_untouched_when_input_is_invalid():
    x = _series(5, 12)
    x[3, 4] = np.nan
    o = np.full((5, 12, 12), 7.0, np.float32)
    with pytest.raises(InputError, match="NaN"):
        recurrence_plot(x, out=o)
    with pytest.raises(ConfigError, match="dimension"):
        recurrence_plot(x, dimension=13, out=o)
    assert (o == 7.0).all()


# --------------------------------------------------------------------------------------------
# threads: no global torch thread setting is ever changed
# --------------------------------------------------------------------------------------------


def test_thread_settings_never_change(monkeypatch):
    """torch.set_num_threads is never called, and while plots are computed (pool created
    meanwhile, several calls) neither a polling thread nor fresh threads (which start from
    torch's process-wide default) see another thread count; the workers run torch
    single-threaded."""
    import threading

    monkeypatch.setattr(rp_threads, "_POOL", None)  # the pool (and its workers' setup) is made in here
    prev = torch.get_num_threads()
    torch.set_num_threads(2)

    def forbidden(n):
        raise AssertionError(f"torch.set_num_threads({n}) called by the library")

    monkeypatch.setattr(torch, "set_num_threads", forbidden)
    pool = None
    try:
        seen, stop = set(), threading.Event()

        def fresh():
            seen.add(("fresh", torch.get_num_threads()))

        def watch():
            while not stop.is_set():
                seen.add(("poll", torch.get_num_threads()))
                t = threading.Thread(target=fresh)
                t.start()
                t.join()

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            x = _series(3000, 46, seed=27)
            for thr in (None, "point", None):
                recurrence_plot(x, threshold=thr)
        finally:
            stop.set()
            watcher.join()
        assert {n for _, n in seen} == {2} and torch.get_num_threads() == 2
        pool = rp_threads._POOL
        assert pool is not None and pool.size >= 2
        if pool.single_threaded:
            assert {pool.executor.submit(torch.get_num_threads).result() for _ in range(4)} == {1}
    finally:
        monkeypatch.undo()  # restores torch.set_num_threads and the previous pool
        if pool is not None and pool is not rp_threads._POOL:
            pool.executor.shutdown(wait=False)
        torch.set_num_threads(prev)


def test_small_kernel_mode_without_openmp_access(monkeypatch):
    """Where the OpenMP runtime cannot be reached, workers keep every kernel below torch's
    parallel grain instead: same results."""
    x = _series(500, 46, seed=28)
    want = {thr: recurrence_plot(x, 3, 1, thr) for thr in (None, "point", "distance")}
    monkeypatch.setattr(rp_threads, "_POOL", None)
    monkeypatch.setattr(rp_threads, "_omp_thread_setters", lambda: ())
    monkeypatch.setattr(rp_threads, "_make_this_thread_single_threaded", lambda: False)
    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rows, pool, n = rp_threads.chunk_plan(500, 256, torch.device("cpu"), 46 * 46, 1)
        assert pool is not None and not pool.single_threaded and rows * 46 * 46 <= rp_threads.PARALLEL_GRAIN
        for thr, ref in want.items():
            np.testing.assert_array_equal(recurrence_plot(x, 3, 1, thr), ref)
        np.testing.assert_array_equal(stack_recurrence_plots(x.reshape(250, 2, 46), size=20),
                                      stack_recurrence_plots(x.reshape(250, 2, 46), size=20))
    finally:
        torch.set_num_threads(prev)
        if rp_threads._POOL is not None:
            rp_threads._POOL.executor.shutdown(wait=False)


def test_worker_error_propagates(monkeypatch):
    x = _series(4000, 30, seed=29)
    calls = []

    def boom(*a, **k):
        calls.append(1)
        raise RuntimeError("boom in worker")

    with monkeypatch.context() as patch:
        _patch_where_used(patch, "distances_into", boom)
        with pytest.raises(RuntimeError, match="boom in worker"):
            recurrence_plot(x, dimension=2)
    assert recurrence_plot(x[:5], dimension=2).shape == (5, 29, 29)


def test_sources_compile_without_warnings():
    """No invalid escape sequences (DeprecationWarning/SyntaxWarning at compile time)."""
    import pathlib
    import warnings

    root = pathlib.Path(__file__).resolve().parents[1]
    for rel in [*(f"pimc_core/series/{m}.py" for m in ("recurrence", "rp_params", "rp_tensors", "rp_distances",
                                                      "rp_thresholds", "rp_fused", "rp_chunks", "rp_threads")),
                "tests/test_recurrence.py", "benchmarks/bench_recurrence.py"]:
        path = root / rel
        if not path.exists():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compile(path.read_text(), str(path), "exec")
