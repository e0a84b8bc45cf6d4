"""The shared training steps (pimc_core.fit.pipeline): the same model whatever torch's thread
count, stacks too short for a series model refused in one line, declared config checks, and the
one error boundary of ``python -m training``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pimc_core.datasets.synthetic import make_synthetic
from pimc_core.errors import ConfigError, InputError
from pimc_core.fit import FitConfig, fit, load_fit_config
from pimc_core.fit import pipeline as steps
from pimc_core.io.timeseries import open_series
from tests.test_fit import TINY

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("syn"), size=24, n_dates=10, seed=4, n_classes=4)


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)  # as a user limiting the threads would
    return env


def test_fit_gives_the_same_weights_at_1_and_2_threads(stack, tmp_path):
    """``pimc fit`` with ``--set threads=1`` and ``--set threads=2`` (and OMP_NUM_THREADS to
    match), same seed: bit-identical weights. Before the training stages ran on one thread, the
    two differed by up to 0.045 in a weight."""
    from safetensors.numpy import load_file

    cfg = tmp_path / "fit.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "pretrain": {**TINY["pretrain"], "steps": 6}}))
    weights = []
    for threads in (1, 2):
        out = tmp_path / f"t{threads}.pimc"
        r = subprocess.run([sys.executable, "-m", "pimc_core.cli", "fit", str(stack.manifest), "--labels",
                            str(stack.labels_sparse), "--out", str(out), "--config", str(cfg), "--quiet",
                            "--set", f"threads={threads}", "--set", "seed=3"],
                           cwd=tmp_path, env=_env(threads), capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        weights.append(load_file(str(out)))
    assert weights[0].keys() == weights[1].keys()
    differ = [k for k in weights[0] if not np.array_equal(weights[0][k], weights[1][k])]
    assert not differ, differ


def test_maps_of_one_model_do_not_depend_on_threads(stack, tmp_path):
    """``pimc classify`` of one model at 1 and 2 torch threads: the same classes, (near-)same
    probabilities (measured: identical)."""
    import rasterio

    model = tmp_path / "m.pimc"
    fit(stack.manifest, stack.labels_sparse, model, config={**TINY, "forecast": {"enabled": False}}, progress=False)
    maps = {}
    for threads in (1, 2):
        out = tmp_path / f"maps{threads}"
        r = subprocess.run([sys.executable, "-m", "pimc_core.cli", "classify", str(stack.manifest), "--model", str(model),
                            "--out", str(out), "--probabilities", "--quiet"],
                           env=_env(threads), capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        maps[threads] = {}
        for name in ("classes", "probabilities"):
            with rasterio.open(out / f"{name}.tif") as ds:
                maps[threads][name] = ds.read()
    assert np.array_equal(maps[1]["classes"], maps[2]["classes"])
    np.testing.assert_allclose(maps[1]["probabilities"], maps[2]["probabilities"], atol=1e-5)


def test_training_threads_is_one_thread_then_restores():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with steps.training_threads(torch.device("cpu")):
            assert torch.get_num_threads() == steps.TRAINING_THREADS == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError):
            with steps.training_threads("cpu"):
                raise RuntimeError("a failing step")
        assert torch.get_num_threads() == 2
        with steps.training_threads(torch.device("meta")):  # not the CPU: left alone
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _one_date_stack(stack, folder: Path) -> Path:
    """A copy of the stack's manifest listing only its first scene."""
    text = stack.manifest.read_text()
    head, items = text.split("items:\n")
    first = items.splitlines()[0].replace("path: ", f"path: {stack.outdir}/")
    folder.mkdir()
    (folder / "manifest.yaml").write_text(f"{head}items:\n{first}\n")
    return folder / "manifest.yaml"


def test_too_few_dates_is_refused_in_one_line(stack, tmp_path, capsys):
    """A 1-date stack with ``data.min_valid=1`` used to train a model of 1 x 1 recurrence plots."""
    from pimc_core.cli import main

    one = _one_date_stack(stack, tmp_path / "one")
    assert len(open_series(one)) == 1
    out = tmp_path / "m.pimc"
    rc = main(["fit", str(one), "--labels", str(stack.labels_sparse), "--out", str(out), "--quiet",
               "--set", "data.min_valid=1", "--set", "pretrain.steps=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and not out.exists()
    assert "1 date;" in err[0] and f"at least {steps.MIN_DATES} dates" in err[0]
    two = open_series(stack.manifest).select(end=open_series(stack.manifest).dates[1])
    with pytest.raises(InputError, match=r"2 dates; a series model needs at least 3 dates"):
        fit(two, stack.labels_sparse, tmp_path / "x.pimc", config={**TINY, "data": {"min_valid": 1}}, progress=False)
    with pytest.raises(ConfigError, match=r"data.n_dates: a grid of 2 dates"):
        fit(stack.manifest, None, tmp_path / "x.pimc", progress=False,
            config={**TINY, "data": {**TINY["data"], "dates": "grid", "n_dates": 2}})
    # the minimum itself trains (3 x 3 recurrence plots; a forecast needs 8 dates and is skipped)
    three = open_series(stack.manifest).select(end=open_series(stack.manifest).dates[2])
    res = fit(three, stack.labels_sparse, tmp_path / "3.pimc", config={**TINY, "data": {**TINY["data"], "min_valid": 1}},
              progress=False)
    assert res.path.exists() and res.forecast is None


def test_training_commands_refuse_too_few_dates(tmp_path, capsys):
    from training import raster

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "out_dir": str(tmp_path / "run"), "threads": 1, "data": {"min_valid": 1, "patch_size": 3},
        "sources": [{"path": str(tmp_path / "data"), "synthetic": {"size": 16, "n_dates": 2, "seed": 1}}]}))
    assert raster.main(["pretrain", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("training pretrain: error:") and "2 dates; a series model needs at least 3" in err


def test_declared_checks_name_parameter_and_value():
    from training.config import EvalConfig, SourceSpec

    for section, bad in (("forecast", {"horizon": -1}), ("forecast", {"max_windows": -2}),
                         ("data", {"per_class": -1}), ("data", {"block": 0})):
        with pytest.raises(ConfigError, match=rf"{section}\.{next(iter(bad))} must be .*; got -?\d"):
            FitConfig.from_dict({section: bad})
    for key, value in (("threads", -1), ("seed", -1)):
        with pytest.raises(ConfigError, match=rf"{key} must be an int in the range \[0, inf\); got {value}"):
            load_fit_config(None, [f"{key}={value}"])
    with pytest.raises(ConfigError, match="classifier_inputs must be one of 'all', 'auto', 'temporal'; got 'patch'"):
        FitConfig.from_dict({"classifier_inputs": "patch"})
    with pytest.raises(ConfigError, match="evaluate.repeats must be an int in the range"):
        EvalConfig(repeats=0)
    with pytest.raises(ConfigError, match="'path'"):
        SourceSpec()
    assert FitConfig.from_dict({"forecast": {"horizon": 3}, "threads": 2}).forecast.horizon == 3


@pytest.mark.parametrize("exc, status, word", [(KeyboardInterrupt, 130, "interrupted"), ("sigterm", 143, "terminated")])
def test_training_commands_end_through_the_one_boundary(tmp_path, capsys, monkeypatch, exc, status, word):
    """Ctrl-C → 130 and SIGTERM → 143, one line each, for the raster commands, report and series."""
    from pimc_core.cli.boundary import Terminated
    from training import __main__ as cli
    from training import raster, series
    from training import report as report_cli

    def stop(*a, **k):
        raise Terminated() if exc == "sigterm" else exc()

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"sources": [{"path": str(tmp_path / "none")}]}))
    monkeypatch.setitem(raster.COMMANDS, "finetune", stop)
    monkeypatch.setattr(report_cli, "run_report", stop)
    monkeypatch.setattr(series, "run", stop)
    for argv, prog in ((["finetune", "--config", str(cfg)], "training finetune"),
                       (["report", "--quick", "--out", str(tmp_path / "r.md")], "training report"),
                       (["series", "--train", "a.tsv", "--test", "b.tsv"], "training series")):
        assert cli.main(argv) == status
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"{prog}: {word};"), err
    assert not (tmp_path / "r.md").exists()
    assert cli.main(["bogus"]) == 2
    assert capsys.readouterr().err.strip() == ("python -m training: error: unknown command 'bogus' "
                                               "(choose from pretrain, finetune, evaluate, forecast, series, report)")
