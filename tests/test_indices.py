"""Vegetation indices, checked against the Awesome Spectral Indices catalogue (spyndex)."""

from __future__ import annotations

import numpy as np
import pytest
import spyndex  # a test requirement (requirements-dev.txt): the catalogue the indices are checked against
import torch

from pimc_core.errors import BandError, ConfigError, InputError, PimcError
from pimc_core.series.indices import INDICES, compute_indices, evi, evi2, ndvi, required_bands, savi

N, R, B = 0.45, 0.08, 0.05


def _spyndex(name: str, blue=None, red=None, nir=None, **extra):
    """Compute an index with spyndex (catalogue formulas, explicit constants)."""
    params = {"N": nir, "R": red}
    if blue is not None:
        params["B"] = blue
    if name == "EVI":
        params.update(g=2.5, C1=6.0, C2=7.5, L=1.0)
    elif name == "EVI2":
        params.update(g=2.5, L=1.0)
    params.update(extra)
    return np.asarray(spyndex.computeIndex(name, params=params), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# catalogue formulas and reference values
# --------------------------------------------------------------------------------------------


def test_catalogue_formulas_are_the_ones_implemented():
    assert spyndex.indices["NDVI"].formula.replace(" ", "") == "(N-R)/(N+R)"
    assert spyndex.indices["EVI"].formula.replace(" ", "") == "g*(N-R)/(N+C1*R-C2*B+L)"
    assert spyndex.indices["SAVI"].formula.replace(" ", "") == "(1.0+L)*(N-R)/(N+R+L)"
    assert spyndex.indices["EVI2"].formula.replace(" ", "") == "g*(N-R)/(N+2.4*R+L)"


def test_reference_values():
    assert ndvi(R, N) == pytest.approx(0.6981132075, abs=1e-10)
    assert evi(B, R, N) == pytest.approx(0.5948553055, abs=1e-10)
    assert savi(R, N, L=0.5) == pytest.approx(0.5388349515, abs=1e-10)
    assert savi(R, N) == pytest.approx(0.5388349515, abs=1e-10)  # default L = 0.5
    assert evi2(R, N) == pytest.approx(2.5 * (N - R) / (N + 2.4 * R + 1), abs=1e-12)


def test_reference_values_match_spyndex():
    assert ndvi(R, N) == pytest.approx(float(_spyndex("NDVI", red=R, nir=N)), abs=1e-12)
    assert evi(B, R, N) == pytest.approx(float(_spyndex("EVI", blue=B, red=R, nir=N)), abs=1e-12)
    assert savi(R, N, L=0.5) == pytest.approx(float(_spyndex("SAVI", red=R, nir=N, L=0.5)), abs=1e-12)
    assert evi2(R, N) == pytest.approx(float(_spyndex("EVI2", red=R, nir=N)), abs=1e-12)


def test_evi_has_no_extra_plus_one():
    # The classic bug: ... + L + 1 in the denominator gives 0.4465... here.
    wrong = 2.5 * (N - R) / (N + 6 * R - 7.5 * B + 1 + 1)
    assert abs(evi(B, R, N) - wrong) > 0.1


@pytest.fixture
def reflectance():
    rng = np.random.default_rng(42)
    shape = (5, 7, 11)
    blue = rng.uniform(0.0, 0.15, shape)
    red = rng.uniform(0.0, 0.4, shape)
    nir = rng.uniform(0.05, 0.7, shape)
    return blue, red, nir


@pytest.mark.parametrize(
    ("name", "func", "needs_blue", "extra"),
    [
        ("NDVI", ndvi, False, {}),
        ("EVI", evi, True, {}),
        ("SAVI", lambda r, n: savi(r, n, L=0.5), False, {"L": 0.5}),
        ("EVI2", evi2, False, {}),
    ],
)
def test_random_arrays_match_spyndex(reflectance, name, func, needs_blue, extra):
    blue, red, nir = reflectance
    expected = _spyndex(name, blue=blue if needs_blue else None, red=red, nir=nir, **extra)
    got = func(blue, red, nir) if needs_blue else func(red, nir)
    assert isinstance(got, np.ndarray)
    assert got.shape == red.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)

    got32 = func(blue.astype(np.float32), red.astype(np.float32), nir.astype(np.float32)) if needs_blue else func(
        red.astype(np.float32), nir.astype(np.float32)
    )
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, expected, rtol=1e-4, atol=1e-5)


def test_savi_other_L_matches_spyndex(reflectance):
    _, red, nir = reflectance
    np.testing.assert_allclose(savi(red, nir, L=1.0), _spyndex("SAVI", red=red, nir=nir, L=1.0), rtol=1e-12)
    np.testing.assert_allclose(savi(red, nir, L=0.25), _spyndex("SAVI", red=red, nir=nir, L=0.25), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# numpy / torch, dtypes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_numpy_parity(reflectance, dtype):
    blue, red, nir = reflectance
    tb, tr, tn = (torch.as_tensor(a, dtype=dtype) for a in (blue, red, nir))
    cases = [
        (ndvi(tr, tn), ndvi(red, nir)),
        (evi(tb, tr, tn), evi(blue, red, nir)),
        (savi(tr, tn), savi(red, nir)),
        (evi2(tr, tn), evi2(red, nir)),
    ]
    for got, expected in cases:
        assert isinstance(got, torch.Tensor)
        assert got.dtype == dtype and got.device == tr.device and got.shape == tr.shape
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        np.testing.assert_allclose(got.numpy(), expected, rtol=tol, atol=tol)


def test_compute_indices_torch_matches_numpy(reflectance):
    blue, red, nir = reflectance
    np_out = compute_indices({"blue": blue, "red": red, "nir": nir}, ("ndvi", "evi", "savi", "evi2"))
    t_out = compute_indices(
        {k: torch.as_tensor(v, dtype=torch.float32) for k, v in {"blue": blue, "red": red, "nir": nir}.items()},
        ("ndvi", "evi", "savi", "evi2"),
    )
    assert isinstance(t_out, torch.Tensor) and t_out.dtype == torch.float32
    np.testing.assert_allclose(t_out.numpy(), np_out, rtol=1e-5, atol=1e-5)


def test_integer_inputs_give_float32():
    red = np.array([0, 1, 2], dtype=np.uint16)
    nir = np.array([0, 3, 6], dtype=np.uint16)
    out = ndvi(red, nir)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [np.nan, 0.5, 0.5])
    tout = ndvi(torch.as_tensor(red.astype(np.int32)), torch.as_tensor(nir.astype(np.int32)))
    assert tout.dtype == torch.float32
    assert torch.isnan(tout[0]) and tout[1].item() == pytest.approx(0.5)


def test_float16_preserved_and_scalars_do_not_upcast():
    red = np.array([0.08], dtype=np.float16)
    assert ndvi(red, np.float16(0.45)).dtype == np.float16
    assert ndvi(red.astype(np.float32), 0.45).dtype == np.float32
    assert ndvi(torch.tensor([0.08]), 0.45).dtype == torch.float32


def test_no_silent_clipping():
    # Digital numbers (0-10000) and reflectances above 1 are not clipped or rescaled.
    assert evi(0.0, 0.0, 2.0) == pytest.approx(2.5 * 2.0 / 3.0)
    assert savi(-0.1, 0.0) == pytest.approx(1.5 * 0.1 / 0.4)
    # EVI outside [-1, 1] over bright blue surfaces is returned as is.
    assert abs(evi(0.19, 0.1, 0.3)) > 1


# --------------------------------------------------------------------------------------------
# zero denominators and NaN
# --------------------------------------------------------------------------------------------


def test_zero_denominator_is_nan_not_inf():
    zeros = np.zeros(3)
    with np.errstate(all="raise"):  # no floating-point warnings escape either
        assert np.isnan(ndvi(zeros, zeros)).all()
        assert np.isnan(savi(np.full(3, -0.25), np.full(3, -0.25))).all()
        assert np.isnan(evi2(np.zeros(2), np.full(2, -1.0))).all()
        # EVI denominator N + 6R - 7.5B + 1 = 0 at N=0.5, R=0, B=0.2
        assert np.isnan(evi(np.array([0.2]), np.array([0.0]), np.array([0.5]))).all()
    t = ndvi(torch.zeros(3), torch.zeros(3))
    assert torch.isnan(t).all() and not torch.isinf(t).any()
    assert np.isnan(ndvi(0.0, 0.0))


def test_nan_inputs_propagate():
    red = np.array([np.nan, 0.1, 0.1])
    nir = np.array([0.4, np.nan, 0.4])
    out = ndvi(red, nir)
    assert np.isnan(out[:2]).all() and np.isfinite(out[2])
    out = evi(np.array([np.nan]), np.array([0.1]), np.array([0.4]))
    assert np.isnan(out).all()
    tout = evi2(torch.tensor([float("nan"), 0.1]), torch.tensor([0.4, 0.4]))
    assert torch.isnan(tout[0]) and torch.isfinite(tout[1])


# --------------------------------------------------------------------------------------------
# registry and compute_indices
# --------------------------------------------------------------------------------------------


def test_registry():
    assert set(INDICES) == {"ndvi", "evi", "savi", "evi2", "vv_db", "vh_db", "vh_vv_db", "rvi"}
    assert INDICES["evi"][1] == ("blue", "red", "nir")
    assert required_bands(["ndvi", "evi"]) == ("red", "nir", "blue")
    assert required_bands("evi2") == ("red", "nir")
    with pytest.raises(ConfigError, match="ndvi, evi, savi, evi2"):
        required_bands(["ndwi"])


def test_compute_indices_stacks_on_new_axis_0(reflectance):
    blue, red, nir = reflectance  # (T, H, W) = (5, 7, 11)
    bands = {"blue": blue, "red": red, "nir": nir, "swir1": np.zeros_like(red)}
    out = compute_indices(bands)
    assert out.shape == (3,) + red.shape and out.dtype == np.float64
    np.testing.assert_array_equal(out[0], ndvi(red, nir))
    np.testing.assert_array_equal(out[1], evi(blue, red, nir))
    np.testing.assert_array_equal(out[2], savi(red, nir))
    out2 = compute_indices(bands, ["evi2", "NDVI"])
    assert out2.shape == (2,) + red.shape
    np.testing.assert_array_equal(out2[0], evi2(red, nir))
    np.testing.assert_array_equal(out2[1], ndvi(red, nir))


def test_compute_indices_pixel_series_layout():
    rng = np.random.default_rng(1)
    red = rng.uniform(0, 0.3, (100, 12)).astype(np.float32)  # (N, T)
    nir = rng.uniform(0.1, 0.6, (100, 12)).astype(np.float32)
    out = compute_indices({"red": red, "nir": nir}, ("ndvi", "savi", "evi2"))
    assert out.shape == (3, 100, 12) and out.dtype == np.float32


def test_compute_indices_invalid_mask(reflectance):
    blue, red, nir = reflectance
    bands = {"blue": blue, "red": red, "nir": nir}
    invalid = np.zeros(red.shape, dtype=bool)
    invalid[0, 1, 2] = True
    out = compute_indices(bands, invalid=invalid)
    assert np.isnan(out[:, 0, 1, 2]).all()
    assert np.isfinite(np.delete(out.reshape(3, -1), np.ravel_multi_index((0, 1, 2), red.shape), axis=1)).all()

    # broadcastable mask: whole dates invalid, shape (T, 1, 1)
    per_date = np.array([False, True, False, False, True])[:, None, None]
    out = compute_indices(bands, ("ndvi",), invalid=per_date)
    assert np.isnan(out[0, [1, 4]]).all() and np.isfinite(out[0, [0, 2, 3]]).all()

    tout = compute_indices({k: torch.as_tensor(v) for k, v in bands.items()}, ("ndvi",), invalid=torch.as_tensor(per_date))
    np.testing.assert_array_equal(np.isnan(tout.numpy()), np.isnan(out))

    with pytest.raises(InputError, match="does not broadcast"):
        compute_indices(bands, invalid=np.zeros((3,), dtype=bool))
    with pytest.raises(InputError, match="boolean"):
        compute_indices(bands, invalid=np.zeros(red.shape, dtype=np.uint8))


def test_evi_without_blue_is_band_error_suggesting_evi2():
    bands = {"red": np.zeros(4), "nir": np.ones(4), "swir1": np.zeros(4)}
    with pytest.raises(BandError) as err:
        compute_indices(bands, ("ndvi", "evi"))
    msg = str(err.value)
    assert "'evi'" in msg and "'blue'" in msg and "evi2" in msg
    assert "red, nir, swir1" in msg
    assert isinstance(err.value, PimcError)


def test_missing_band_without_alternative():
    with pytest.raises(BandError, match="index 'ndvi' needs band 'nir'"):
        compute_indices({"red": np.zeros(3)}, ("ndvi",))


def test_unknown_index_is_config_error_listing_valid_names():
    with pytest.raises(ConfigError) as err:
        compute_indices({"red": np.zeros(3), "nir": np.zeros(3)}, ("ndvi", "gndvi"))
    msg = str(err.value)
    assert "gndvi" in msg and all(n in msg for n in ("ndvi", "evi", "savi", "evi2"))
    with pytest.raises(ConfigError):
        compute_indices({"red": np.zeros(3), "nir": np.zeros(3)}, ())


def test_shape_mismatch_is_input_error():
    with pytest.raises(InputError, match="same shape"):
        compute_indices({"red": np.zeros((2, 3)), "nir": np.zeros((3, 2))}, ("ndvi",))
