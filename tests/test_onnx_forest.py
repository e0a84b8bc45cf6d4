"""The forest member in an exported ONNX file: the file's probabilities are the ensemble's."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from pimc_core.models.forest import ArrayForest, series_features, train_forest
from pimc_core.models.onnx_forest import ML_OPSET, floor_float32, forest_nodes


def _session(forest: ArrayForest, weight: float, c: int, t: int):
    from onnx import TensorProto, checker, helper

    k = forest.n_classes
    nodes, inits = forest_nodes(forest, weight, "series", "net", "probabilities")
    graph = helper.make_graph(
        nodes, "forest", [helper.make_tensor_value_info("series", TensorProto.FLOAT, ["N", c, t]),
                          helper.make_tensor_value_info("net", TensorProto.FLOAT, ["N", k])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", k])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    checker.check_model(proto)
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("k", [2, 3, 5])
def test_the_forest_node_mixes_as_the_array_forest_does(k):
    rng = np.random.default_rng(k)
    y = rng.integers(0, min(k, 4), 400)  # with k = 5, class 4 never labelled: probability 0
    x = (rng.normal(0, 1, (400, 3, 8)) + y[:, None, None] * 0.3).astype(np.float32)
    forest = train_forest(series_features(x), y, k, trees=20, seed=0)
    xt = rng.normal(0, 1, (600, 3, 8)).astype(np.float32)
    xt[:100] = x[:100]  # training values: on either side of the thresholds
    net = rng.dirichlet(np.ones(k), 600).astype(np.float32)
    for w in (0.5, 1.0):
        out = _session(forest, w, 3, 8).run(None, {"series": xt, "net": net})[0]
        assert out.shape == (600, k)
        np.testing.assert_allclose(out, forest.mix(net, xt, w), atol=1e-6)


def test_thresholds_between_two_float32_neighbours_send_both_the_right_way():
    a = np.nextafter(np.float32(1.0), np.float32(2))  # an odd last bit: the midpoint rounds to even, up to b
    b = np.nextafter(a, np.float32(2))
    t = (float(a) + float(b)) / 2  # the float64 midpoint scikit-learn would store
    assert np.float32(t) == b and floor_float32(np.array([t]))[0] == a
    forest = ArrayForest(feature=np.array([0, -1, -1], np.int32), threshold=np.array([t, -2, -2]),
                         left=np.array([1, -1, -1], np.int32), right=np.array([2, -1, -1], np.int32),
                         value=np.array([[0.5, 0.5, 0], [1, 0, 0], [0, 0, 1]], np.float32),
                         roots=np.array([0], np.int32), n_features=1)
    x = np.array([[[a]], [[b]]], np.float32)
    out = _session(forest, 1.0, 1, 1).run(None, {"series": x, "net": np.zeros((2, 3), np.float32)})[0]
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(out, forest.predict_proba(series_features(x)))


def test_an_exported_model_with_a_forest_maps_as_pimc_does(tmp_path, capsys):
    from pimc_core.cli import main
    from pimc_core.models.onnx_export import export_onnx
    from pimc_core.models.pixel_model import load_pixel_model, save_pixel_model
    from pimc_core.series.composites import reflect_fill_patches
    from tests.test_fast_maps import _inputs, _model

    base = _model()
    x, p = _inputs(base, 200)
    k = base.net.cfg.n_classes
    y = np.argmax(x[:, 0, :4], axis=1) % k  # some structure for the trees to find
    forest = train_forest(series_features(x), y, k, trees=15, seed=1)
    training = {**base.metadata["training"], "ensemble": {"forest_weight": 0.5}}
    save_pixel_model(tmp_path / "m.pimc", base.net, classes=base.metadata["classes"], training=training, forest=forest)
    assert main(["export", str(tmp_path / "m.pimc"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert "the probabilities mix the forest member in at 0.5, as pimc classify does" in capsys.readouterr().out
    model = load_pixel_model(tmp_path / "m.pimc")
    assert model.forest is not None and model.forest_weight == 0.5
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    props = sess.get_modelmeta().custom_metadata_map
    assert json.loads(props["pimc.forest_in_graph"]) is True and float(props["pimc.forest_weight"]) == 0.5
    assert [o.name for o in sess.get_outputs()] == ["probabilities", "embeddings"]
    pf = p.copy()
    reflect_fill_patches(pf)
    prob, emb = sess.run(None, {"series": x, "patches": pf})
    model.engine = "torch"
    ref = model.predict(x, p, outputs=("probabilities", "embeddings"))
    np.testing.assert_allclose(prob, ref["probabilities"], atol=2e-5)
    np.testing.assert_allclose(emb, ref["embeddings"], atol=1e-4)
    alone = base.predict(x, p, outputs=("probabilities",))["probabilities"]
    assert np.abs(prob - alone).max() > 0.05  # the forest moved them: it is in the file

    plain = export_onnx(base, tmp_path / "plain.onnx")
    sess = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"])
    assert json.loads(sess.get_modelmeta().custom_metadata_map["pimc.forest_in_graph"]) is False
