"""The .pimc model file: safetensors weights + JSON metadata, never unpickled."""

from __future__ import annotations

import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from torch import nn

from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.models.compatibility import check_compatible
from pimc_core.models.model_file import load_model, read_metadata, save_model
from pimc_core.models.model_metadata import FORMAT_VERSION, ModelMetadata


def full_metadata() -> dict:
    return {
        "task": "pixel_classification",
        "architecture": {"rp_encoder": {"kind": "rp", "in_channels": 3, "width": 8}, "classifier": {"n_classes": 2}},
        "indices": ["ndvi", "evi", "savi"],
        "bands": ["blue", "green", "red", "nir"],
        "n_dates": 37,
        "dates": {"mode": "grid", "start_doy": 244, "step_days": 10, "start": "2018-09-01"},
        "recurrence": {"dimension": 1, "time_delay": 1, "threshold": "point", "percentage": 10},
        "normalisation": {"bands": {"mean": [0.1, 0.1, 0.1, 0.3], "std": [0.05, 0.05, 0.05, 0.1]},
                          "indices": {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}},
        "patch_size": 9,
        "classes": [{"id": 1, "name": "Meadow", "color": "#AEC7E8"}, {"id": 3, "name": "Corn", "color": None}],
        "training": {"config": {"lr": 1e-3}, "seeds": [0, 1], "epochs": 2,
                     "losses": {"train": [np.float32(1.5), 0.9]}, "dataset": "PASTIS"},
    }


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)


def test_round_trip(tmp_path):
    enc, head = Tiny(), nn.Linear(8, 2)
    enc.bn.running_mean.fill_(0.25)
    path = save_model(tmp_path / "m.pimc", {"rp_encoder": enc.state_dict(), "classifier": head.state_dict()},
                      full_metadata())
    assert path == tmp_path / "m.pimc" and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["m.pimc"]  # no temp file left behind
    weights, meta = load_model(path)
    assert set(weights) == {"rp_encoder", "classifier"}
    for key, t in enc.state_dict().items():
        assert torch.equal(weights["rp_encoder"][key], t) and weights["rp_encoder"][key].dtype == t.dtype
    assert weights["rp_encoder"]["bn.num_batches_tracked"].dtype == torch.int64
    Tiny().load_state_dict(weights["rp_encoder"])  # loads into a fresh module
    nn.Linear(8, 2).load_state_dict(weights["classifier"])
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["created"].endswith("Z") and meta["pimc_version"]
    assert meta["classes"][0] == {"id": 1, "name": "Meadow", "color": "#aec7e8"}
    assert meta["training"]["losses"]["train"] == [1.5, 0.9]  # numpy scalar → float
    assert meta["dates"] == {"mode": "grid", "start_doy": 244, "step_days": 10, "start": "2018-09-01"}
    assert read_metadata(path) == meta
    # the file is a standard safetensors file: header JSON with our two metadata keys
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert set(header["__metadata__"]) == {"pimc", "format_version"}
    assert header["__metadata__"]["format_version"] == "1"
    # metadata round-trips through the dataclass
    assert ModelMetadata.from_dict(meta).to_dict() == meta


def test_flat_keys_tied_weights_and_overwrite(tmp_path):
    shared = torch.randn(4, 4)
    flat = {"enc.a.weight": shared, "enc.b.weight": shared, "head.w": torch.arange(6.0).reshape(2, 3)[:, 1]}
    p = save_model(tmp_path / "f.pimc", flat, {"format_version": 1})
    w, meta = load_model(p)
    assert torch.equal(w["enc"]["a.weight"], shared) and torch.equal(w["enc"]["b.weight"], shared)
    assert torch.equal(w["head"]["w"], torch.tensor([1.0, 4.0]))
    assert meta["indices"] == [] and meta["task"] is None
    save_model(p, {"enc": {"x": torch.zeros(1)}}, {})  # atomic replace of an existing file
    assert set(load_model(p)[0]) == {"enc"}
    with pytest.raises(ConfigError, match="module.parameter"):
        save_model(tmp_path / "g.pimc", {"noprefix": torch.zeros(1)}, {})
    with pytest.raises(ConfigError, match="not a torch.Tensor"):
        save_model(tmp_path / "g.pimc", {"enc": {"x": np.zeros(1)}}, {})
    with pytest.raises(ConfigError, match="without '.'"):
        save_model(tmp_path / "g.pimc", {"a.b": {"x": torch.zeros(1)}}, {})
    with pytest.raises(InputError, match="output folder does not exist"):
        save_model(tmp_path / "nope" / "g.pimc", {"enc": {"x": torch.zeros(1)}}, {})
    assert not (tmp_path / "g.pimc").exists()


class _Marker:
    """Unpickling this object creates a file: proof that the loader ran pickle code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_payload_refused_without_unpickling(tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "model.pimc"
    evil.write_bytes(pickle.dumps(_Marker(str(marker))))
    with pytest.raises(InputError, match="not a PIMC model file.*pickle"):
        load_model(evil)
    assert not marker.exists()
    # sanity: the payload really does create the marker when unpickled
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Marker(str(probe)))).close()
    assert probe.exists()

    # a torch.save'd object (zip container with a pickle inside)
    torch.save({"w": torch.zeros(2), "obj": _Marker(str(marker))}, tmp_path / "torch.pimc")
    with pytest.raises(InputError, match="not a PIMC model file.*torch.save"):
        load_model(tmp_path / "torch.pimc")
    with pytest.raises(InputError, match="not a PIMC model file"):
        read_metadata(tmp_path / "torch.pimc")
    assert not marker.exists()

    # a legacy (non-zip) torch.save file, pickle protocol 2
    torch.save({"obj": _Marker(str(marker))}, tmp_path / "legacy.pimc", _use_new_zipfile_serialization=False)
    with pytest.raises(InputError, match="not a PIMC model file"):
        load_model(tmp_path / "legacy.pimc")
    assert not marker.exists()


def test_not_a_model_file(tmp_path):
    with pytest.raises(InputError, match="model file not found"):
        load_model(tmp_path / "missing.pimc")
    (tmp_path / "short.pimc").write_bytes(b"abc")
    with pytest.raises(InputError, match="only 3 bytes"):
        load_model(tmp_path / "short.pimc")
    (tmp_path / "text.pimc").write_text("hello world, this is text")
    with pytest.raises(InputError, match="not a PIMC model file"):
        load_model(tmp_path / "text.pimc")
    # a valid safetensors file without our metadata
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(InputError, match="without PIMC metadata"):
        load_model(tmp_path / "plain.safetensors")
    # truncated tensor data
    good = save_model(tmp_path / "good.pimc", {"enc": {"w": torch.randn(100)}}, {})
    data = good.read_bytes()
    (tmp_path / "cut.pimc").write_bytes(data[:-40])
    with pytest.raises(InputError, match="corrupt model file"):
        load_model(tmp_path / "cut.pimc")


def _rewrite_header(path, fn):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    fn(header)
    new = json.dumps(header).encode()
    new += b" " * ((8 - len(new) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n:])


def test_future_version_refused(tmp_path):
    p = save_model(tmp_path / "m.pimc", {"enc": {"w": torch.ones(3)}}, {})
    assert load_model(p)[1]["format_version"] == 1

    def bump(h):
        h["__metadata__"]["format_version"] = "2"
        meta = json.loads(h["__metadata__"]["pimc"])
        meta["format_version"] = 2
        h["__metadata__"]["pimc"] = json.dumps(meta)

    _rewrite_header(p, bump)
    with pytest.raises(InputError, match="format version 2 is newer than this PIMC supports"):
        load_model(p)
    with pytest.raises(InputError, match="newer than this PIMC supports"):
        ModelMetadata.from_dict({"format_version": 2})

    p2 = save_model(tmp_path / "m2.pimc", {"enc": {"w": torch.ones(3)}}, {})
    _rewrite_header(p2, lambda h: h["__metadata__"].update(pimc=json.dumps({"format_version": 1, "colour": 1})))
    with pytest.raises(InputError, match="unknown key.*'colour'"):
        load_model(p2)


def test_metadata_validation():
    ok = ModelMetadata.from_dict(full_metadata())
    assert ok.indices == ["ndvi", "evi", "savi"] and ok.patch_size == 9
    assert ModelMetadata(recurrence={"dimension": 0.2, "time_delay": 2, "threshold": 0.1, "size": 32}).recurrence["dimension"] == 0.2
    cases = [
        ({"classs": []}, "unknown key.*'classs'"),
        ({"dates": {"mode": "grid", "start_doy": 1, "step": 10}}, r"unknown key.*'step'.*in dates"),
        ({"dates": {"mode": "grid", "start_doy": 1}}, "needs step_days"),
        ({"dates": {"mode": "daily"}}, "dates.mode"),
        ({"dates": {"mode": "grid", "start_doy": 400, "step_days": 5}}, "start_doy"),
        ({"indices": ["ndvi", "xyz"]}, "unknown index 'xyz'"),
        ({"bands": ["red", "thermal"]}, "unknown band 'thermal'"),
        ({"n_dates": 0}, "n_dates"),
        ({"indices": ["ndvi"], "normalisation": {"indices": {"mean": [0.1, 0.2], "std": [1, 1]}}},
         r"normalisation.indices.mean has 2 values; expected 1"),
        ({"indices": ["ndvi"], "normalisation": {"indices": {"mean": [0.1], "std": [0]}}}, "std must be > 0"),
        ({"normalisation": {"bands": {"mean": [1], "std": [1]}}}, "model has no bands"),
        ({"classes": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}, "class id 1 appears twice"),
        ({"classes": [{"id": 1, "name": "a", "color": "red"}]}, "color"),
        ({"classes": [{"id": 1, "name": "a", "rgb": 1}]}, r"unknown key.*'rgb'.*classes\[0\]"),
        ({"task": "segmentation"}, "task"),
        ({"task": "forecast"}, "forecast_horizon"),
        ({"created": "yesterday"}, "ISO 8601"),
        ({"training": {"obj": object()}}, r"training.obj is not JSON-serialisable"),
        ({"recurrence": {"threshold": "nearest"}}, "recurrence.threshold"),
        ({"recurrence": {"threshold": -1.0}}, "recurrence.threshold"),
        ({"recurrence": {"dimension": 1.5}}, "recurrence.dimension"),
        ({"recurrence": {"time_delay": 0}}, "recurrence.time_delay"),
        ({"format_version": "1"}, "format_version"),
    ]
    for bad, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            ModelMetadata.from_dict(bad)


def test_check_compatible():
    meta = ModelMetadata.from_dict(full_metadata()).to_dict()
    need = check_compatible(meta, bands=["blue", "green", "red", "nir", "swir1"], indices=["ndvi", "evi", "savi"],
                            n_dates=37, patch_size=9)
    assert need == ("red", "nir", "blue", "green")
    idx_only = dict(meta, bands=[], normalisation=None)
    with pytest.raises(BandError, match="model expects indices ndvi,evi,savi; data lacks band 'blue' needed for evi"):
        check_compatible(idx_only, bands=["red", "nir"])
    with pytest.raises(BandError, match="model reads bands blue,green,red,nir; data lacks band 'green'"):
        check_compatible(meta, bands=["blue", "red", "nir"])
    with pytest.raises(ConfigError, match="model expects indices ndvi,evi,savi"):
        check_compatible(meta, indices=["ndvi", "evi2", "savi"])
    with pytest.raises(ConfigError, match="model expects 37 dates; data has 30"):
        check_compatible(meta, n_dates=30)
    with pytest.raises(ConfigError, match="9x9 patches"):
        check_compatible(meta, patch_size=7)
    assert check_compatible(ModelMetadata(indices=["ndvi"]), bands=("red", "nir")) == ("red", "nir")


def test_model_file_module_is_light():
    """Importing model_file must not import safetensors/torch eagerly (the plugin reads metadata)."""
    import subprocess
    import sys

    code = ("import sys; import pimc_core.models.model_file; "
            "print('safetensors' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.stdout.split() == ["False", "False"]
