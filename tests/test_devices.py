"""Device names (``--device``) and the CPU path of map inference on ``auto``."""

from __future__ import annotations

import pytest
import torch

from pimc_core import devices
from pimc_core.devices import autocast, resolve_device
from pimc_core.errors import ConfigError
from tests.test_fit import TINY


def test_auto_is_cuda_when_there_is_one_else_cpu():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == want
    assert resolve_device(None).type == want
    assert resolve_device("CPU") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "gpu0", "cuda:x", "mps"])
def test_bad_names_are_named(name):
    with pytest.raises(ConfigError, match="auto, cpu, cuda or cuda:N"):
        resolve_device(name)


def test_missing_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA GPU"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_autocast_leaves_cpu_in_float32():
    lin = torch.nn.Linear(4, 2)
    with autocast(torch.device("cpu")):
        assert lin(torch.ones(1, 4)).dtype == torch.float32


def test_map_device_flag(tmp_path, capsys):
    """``--device cpu`` and the default ``auto`` give the same map here; a bad name is one line."""
    from pimc_core.cli import main
    from pimc_core.datasets.synthetic import make_synthetic
    from pimc_core.fit import fit

    s = make_synthetic(tmp_path / "s", size=16, n_dates=8, seed=3, n_classes=3)
    model = tmp_path / "m.pimc"
    fit(s.manifest, s.labels_sparse, model, classes=s.classes_json, progress=False,
        config={**TINY, "forecast": {"enabled": False}})
    outs = {}
    for dev in ("cpu", "auto"):
        d = tmp_path / dev
        assert main(["classify", str(s.manifest), "--model", str(model), "--out", str(d), "--device", dev, "--quiet"]) == 0
        outs[dev] = (d / "classes.tif").read_bytes()
    if not torch.cuda.is_available():
        assert outs["cpu"] == outs["auto"]
    capsys.readouterr()
    assert main(["classify", str(s.manifest), "--model", str(model), "--out", str(tmp_path / "x"),
                 "--device", "tpu", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tpu" in err[0]


def _fake_loadavg(tmp_path, runnable: int) -> str:
    path = tmp_path / "loadavg"
    path.write_text(f"1.90 1.70 1.20 {runnable}/250 12345\n", encoding="ascii")
    return str(path)


def test_runnable_now_reads_the_fourth_field_and_leaves_this_process_out(tmp_path):
    assert devices._runnable_now(_fake_loadavg(tmp_path, 3)) == 2
    assert devices._runnable_now(_fake_loadavg(tmp_path, 1)) == 0
    assert devices._runnable_now(str(tmp_path / "missing")) is None
    (tmp_path / "odd").write_text("1.0 1.0 1.0\n", encoding="ascii")
    assert devices._runnable_now(str(tmp_path / "odd")) is None


def test_busy_cores_follows_a_job_that_just_ended(monkeypatch):
    # the 1-minute average still counts a job that ended seconds ago; the runnable count does not
    monkeypatch.setattr(devices, "_busy_cache", [])
    monkeypatch.setattr(devices.os, "getloadavg", lambda: (1.9, 1.7, 1.2))
    monkeypatch.setattr(devices, "_runnable_now", lambda: 0)
    assert devices.busy_cores(max_age=0) == 0.0
    monkeypatch.setattr(devices.os, "cpu_count", lambda: 2)
    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        devices._busy_cache.clear()
        assert devices.auto_threads() == 2
        # a snapshot may lower the average but never raise it
        monkeypatch.setattr(devices, "_runnable_now", lambda: 5)
        assert devices.busy_cores(max_age=0) == 1.9
        devices._busy_cache.clear()
        assert devices.auto_threads() == 1
        # where /proc/loadavg is not there (not Linux), the average alone
        monkeypatch.setattr(devices, "_runnable_now", lambda: None)
        assert devices.busy_cores(max_age=0) == 1.9
    finally:
        torch.set_num_threads(prev)


def test_busy_cores_reuses_a_fresh_reading(monkeypatch):
    """Map inference asks once per batch of pixels: a reading younger than ``max_age`` is reused."""
    monkeypatch.setattr(devices, "_busy_cache", [])
    reads = []
    monkeypatch.setattr(devices, "_runnable_now", lambda: reads.append(1) or 0)
    monkeypatch.setattr(devices.os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert [devices.busy_cores() for _ in range(50)] == [0.0] * 50
    assert len(reads) == 1
    devices.busy_cores(max_age=0)
    assert len(reads) == 2
