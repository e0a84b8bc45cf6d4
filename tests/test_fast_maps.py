"""Fast maps: the map graph (``InferenceNet``) equals the network as trained, a class map computes
only what it needs, the ONNX engine and export, the device in the summary line, the GPU script."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from pimc_core.cli import main
from pimc_core.models.inference_net import InferenceNet, bin_matrix, graph_supported, resize_matrix
from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.models.pimc_net import PimcNet
from pimc_core.models.pixel_model import PimcPixelModel, load_pixel_model
from pimc_core.series.composites import composite_of

COMPAT = Path(__file__).parent / "data" / "compat_89cc375"
TINY = dict(indices=("ndvi", "evi", "savi"), n_dates=10, rp={"size": 8}, patch_bands=("blue", "red", "nir"),
            rp_encoder={"width": 4, "depth": 2, "embed_dim": 8},
            series_encoder={"width": 4, "depth": 1, "embed_dim": 8, "bins": 4},
            patch_encoder={"width": 4, "depth": 1, "embed_dim": 8}, proj_dim=8, patch_size=3, n_classes=4)


def _model(modalities=("rp", "series", "patch"), **kw) -> PimcPixelModel:
    """A tiny PIMC pixel model with random weights, non-trivial batch-norm statistics and normalisation."""
    torch.manual_seed(0)
    net = PimcNet(PimcModelConfig.from_dict({**TINY, **kw}))
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    c, b = len(net.cfg.indices), max(1, len(net.cfg.patch_bands))
    net.set_normalisation({"indices": {"mean": [0.3] * c, "std": [0.2] * c},
                           "bands": {"mean": [0.1] * b, "std": [0.05] * b}} if net.cfg.patch_bands else
                          {"indices": {"mean": [0.3] * c, "std": [0.2] * c}})
    classes = [{"id": i + 1, "name": f"c{i + 1}", "color": "#000000"} for i in range(net.cfg.n_classes)]
    return PimcPixelModel(net.eval(), {"classes": classes, "training": {"classify_modalities": list(modalities)}})


def _inputs(model: PimcPixelModel, n: int = 300):
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.1, 0.9, (n, len(model.indices), model.n_dates)).astype(np.float32)
    if not model.patch_size:
        return x, None
    p = rng.uniform(0.0, 0.4, (n, model.patch_channels, model.patch_size, model.patch_size)).astype(np.float32)
    p[::7, :, 0, :] = np.nan  # the raster's border: reflected back
    p[::5, 1, 1, 1] = np.nan  # no valid observation: the band mean
    return x, p


def _both(model: PimcPixelModel, x, p, outputs=("probabilities", "embeddings")):
    model.engine = "reference"
    ref = model.predict(x, p, outputs=outputs)
    model.engine = "torch"
    return ref, model.predict(x, p, outputs=outputs)


def test_composite_of_gives_numpy_nanmedian():
    rng = np.random.default_rng(0)
    refl = rng.random((9, 2, 20, 20), dtype=np.float32)
    valid = rng.random((9, 20, 20)) > 0.4
    valid[:, 0, 0] = False  # nothing valid: NaN
    valid[:, 1, 1] = False
    valid[3, 1, 1] = True  # one valid observation
    refl[2, 0, 5, 5] = np.nan  # NaN although "valid"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmedian(np.where(valid[:, None], refl, np.nan), axis=0).astype(np.float32)
    got = composite_of(refl, valid)
    assert got.dtype == np.float32 and np.array_equal(got, want, equal_nan=True)
    assert np.isnan(got[:, 0, 0]).all() and np.array_equal(got[:, 1, 1], refl[3, :, 1, 1])


def test_resize_and_bin_matrices_equal_torch_operators():
    d = torch.rand(3, 2, 30, 30, dtype=torch.float64)
    for size, aa in ((16, True), (45, False)):
        a = resize_matrix(30, size, aa).double()
        want = torch.nn.functional.interpolate(d, size=(size, size), mode="bilinear", align_corners=False, antialias=aa)
        torch.testing.assert_close(a @ d @ a.t(), want, atol=1e-6, rtol=0)
    h = torch.rand(4, 5, 10)
    torch.testing.assert_close(h @ bin_matrix(10, 4), torch.nn.functional.adaptive_avg_pool1d(h, 4))


@pytest.mark.parametrize("kw", [
    {},
    {"rp": {"size": 8, "threshold": "distance", "percentage": 30}},
    {"rp": {"size": None, "threshold": 0.5}},
    {"rp": {"size": 6, "dimension": 2, "time_delay": 2}},
    {"level": "both", "rp_coords": True},
    {"patch_bands": ()},
    {"series_encoder": {"width": 4, "depth": 2, "embed_dim": 8, "pool": "avgmax"}},
])
def test_map_graph_equals_the_network(kw):
    model = _model(**kw)
    x, p = _inputs(model)
    ref, fast = _both(model, x, p)
    np.testing.assert_allclose(fast["probabilities"], ref["probabilities"], atol=2e-5)
    np.testing.assert_allclose(fast["embeddings"], ref["embeddings"], atol=1e-4)
    assert (fast["probabilities"].argmax(1) == ref["probabilities"].argmax(1)).all()


def test_map_graph_with_a_classifier_of_some_modalities_and_no_patches():
    model = _model(modalities=("rp", "series"))
    x, p = _inputs(model)
    assert model.needs_patches(("probabilities",)) is False
    assert model.needs_patches(("probabilities", "embeddings")) and not model.needs_patches(("forecast",))
    ref, fast = _both(model, x, p, outputs=("probabilities",))
    np.testing.assert_allclose(fast["probabilities"], ref["probabilities"], atol=2e-5)
    # the classifier reads no patch: giving them or not changes nothing
    np.testing.assert_allclose(model.predict(x, None, outputs=("probabilities",))["probabilities"],
                               fast["probabilities"], atol=1e-6)


def test_point_threshold_keeps_the_reference_path():
    model = _model(rp={"size": 8, "threshold": "point", "percentage": 20})
    assert "point" in graph_supported(model.net)
    x, p = _inputs(model, 50)
    ref, fast = _both(model, x, p)
    np.testing.assert_array_equal(fast["probabilities"], ref["probabilities"])
    with pytest.raises(Exception, match="point"):
        InferenceNet(model.net)


def test_class_map_skips_the_forecast_and_unused_patches(tiny_sample, tmp_path, monkeypatch):
    """A class map of a series-only classifier: no forecast head, no composite for the patches."""
    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.engine import run_inference

    ts = open_series(tiny_sample.manifest)
    model = _model(modalities=("rp", "series"), n_dates=len(ts.dates), forecast_horizon=2, forecast_input=4)
    model.prepare(ts)
    calls = {"forecast": 0, "composite": 0}
    real_forecast = model.net.forecast

    def forecast(*a, **k):
        calls["forecast"] += 1
        return real_forecast(*a, **k)

    def composite(*a, **k):
        calls["composite"] += 1
        raise AssertionError("no patches are needed")

    monkeypatch.setattr(model.net, "forecast", forecast)
    monkeypatch.setattr(model, "patch_composite", composite)
    res = run_inference(ts, model, None, tmp_path / "cls", products=("classes", "confidence"), block=16)
    assert res.predicted > 0 and calls == {"forecast": 0, "composite": 0}
    assert " on CPU, " in res.summary() and "torch map graph" in res.summary()
    with pytest.raises(AssertionError, match="no patches"):  # the embeddings fuse the patches: read
        run_inference(ts, model, None, tmp_path / "emb", products=("embeddings",), block=16)
    run_inference(ts, model, None, tmp_path / "fc", products=("forecast",), block=16)
    assert calls["forecast"] > 0


def _classes(folder: Path) -> np.ndarray:
    with rasterio.open(folder / "classes.tif") as src:
        return src.read(1)


def test_onnx_engine_gives_the_torch_engines_classes(tmp_path, capsys):
    manifest, model = str(COMPAT / "stack" / "manifest.yaml"), str(COMPAT / "model.pimc")
    for engine in ("torch", "onnx", "reference", "auto"):
        assert main(["classify", manifest, "--model", model, "--out", str(tmp_path / engine), "--engine", engine,
                     "--quiet"]) == 0
        line = capsys.readouterr().out.strip()
        assert "pixels/s on CPU, " in line and {"torch": "torch map graph", "onnx": "ONNX Runtime", "auto": "ONNX Runtime",
                                                "reference": "reference network"}[engine] in line
    torch_cls = _classes(tmp_path / "torch")
    assert (torch_cls > 0).sum() > 500
    np.testing.assert_array_equal(_classes(tmp_path / "onnx"), torch_cls)
    np.testing.assert_array_equal(_classes(tmp_path / "auto"), torch_cls)
    assert (_classes(tmp_path / "reference") == torch_cls).mean() >= 0.995


def test_engine_auto_is_onnx_on_a_cpu():
    from pimc_core.models.graph_engine import resolve_engine

    assert resolve_engine("auto", torch.device("cpu")) == "onnx"
    assert resolve_engine("auto", torch.device("cuda")) == "torch"
    assert resolve_engine("torch", torch.device("cpu")) == "torch"
    with pytest.raises(Exception, match="engine must be one of auto, torch, onnx, reference; got 'fast'"):
        resolve_engine("fast", torch.device("cpu"))


def test_onnx_engine_refusals(tmp_path, capsys):
    manifest = str(COMPAT / "stack" / "manifest.yaml")
    assert main(["classify", manifest, "--model", "builtin:nearest-centroid", "--out", str(tmp_path / "a"),
                 "--engine", "onnx", "--quiet"]) == 2
    assert "--engine onnx applies to .pimc model files" in capsys.readouterr().err
    assert main(["classify", manifest, "--model", str(COMPAT / "model.pimc"), "--out", str(tmp_path / "b"),
                 "--engine", "onnx", "--device", "cuda", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--engine onnx runs on the CPU" in err


def test_export_onnx_file_runs_in_onnxruntime(tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    out = tmp_path / "model.onnx"
    assert main(["export", str(COMPAT / "model.pimc"), "--onnx", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    proto = onnx.load(str(out))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    props = {p.key: p.value for p in proto.metadata_props}
    model = load_pixel_model(COMPAT / "model.pimc")
    assert json.loads(props["pimc.indices"]) == list(model.indices) and int(props["pimc.n_dates"]) == model.n_dates
    assert [c["id"] for c in json.loads(props["pimc.classes"])] == [c["id"] for c in model.class_table]
    assert json.loads(props["pimc.normalisation"])["indices"]["mean"] == pytest.approx(model.net.idx_mean.tolist())
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["series", "patches"]
    assert [o.name for o in sess.get_outputs()] == ["probabilities", "embeddings"]
    model.engine = "reference"
    x, p = _inputs(model, 64)
    from pimc_core.series.composites import reflect_fill_patches

    pf = p.copy()
    reflect_fill_patches(pf)
    prob, emb = sess.run(None, {"series": x, "patches": pf})
    ref = model.predict(x, p, outputs=("probabilities", "embeddings"))
    np.testing.assert_allclose(prob, ref["probabilities"], atol=2e-5)
    np.testing.assert_allclose(emb, ref["embeddings"], atol=1e-4)


def test_export_refusals(tmp_path, capsys):
    model = str(COMPAT / "model.pimc")
    assert main(["export", model, "--onnx", str(tmp_path / "m.txt")]) == 2
    assert "give a .onnx file name" in capsys.readouterr().err
    assert main(["export", model]) == 2
    assert "--onnx OUT.onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "none.pimc"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "model file not found" in capsys.readouterr().err
    assert main(["export", model, "--onnx", str(tmp_path / "m.onnx"), "--opset", "13"]) == 2
    assert "--opset must be at least 17" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_gpu_benchmark_runs_on_cpu(tmp_path):
    from benchmarks import gpu

    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Other\n\ntext\n")
    gpu.main(["--device", "cpu", "--size", "24", "--dates", "8", "--batch", "512", "--pairs-batch", "16",
              "--block", "24", "--out", str(doc)])
    gpu.main(["--device", "cpu", "--size", "24", "--dates", "8", "--batch", "512", "--pairs-batch", "16",
              "--block", "24", "--out", str(doc)])
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\n## Other\n\ntext\n") and text.count(f"## {gpu.SECTION}") == 1
    rows = [ln for ln in text.splitlines() if ln.startswith("| 20")]
    assert len(rows) == 2 and all("CPU, " in r and "24² × 8 dates" in r for r in rows)
    rates = [float(c.replace(",", "")) for c in rows[0].split("|")[4:7]]
    assert all(r > 0 for r in rates)


def test_panel_status_line_names_the_device_and_rate():
    from qgis_plugin.mapping import MapOutcome

    out = MapOutcome(files={"classes": Path("classes.tif")}, pixels=2000, seconds=2.0, device="CPU, 2 threads")
    assert out.summary() == "classes (2000 pixels, 2.0 s, 1,000 pixels/s on CPU, 2 threads)"
