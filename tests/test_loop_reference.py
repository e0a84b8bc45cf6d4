"""The training loops are one loop (:mod:`pimc_core.learn.loop`) that gives, step for step, the
weights of the three loops it replaced.

``tests/data/loop_reference.npz`` holds the weights (and loss curves) of tiny trainings run on the
CPU with one thread by the code before the loops were merged (commit cb1d738): the classifier
fine-tuning (encoders unfrozen with mixup and modality dropout after LP-FT head steps, and frozen),
the forecaster training of ``python -m training forecast`` (unfrozen with noise and a validation
set, and frozen) and contrastive pretraining. On a CPU of the vendor that wrote the file (``#cpu``,
an Intel Xeon) every case must come out bit for bit the same. torch's kernels round differently on
another vendor's CPU (an AMD EPYC gives the same losses to 4 digits and weights within 1e-5 relative,
but the five pretraining steps amplify the rounding to a few per cent of a weight), so there the
step counts must match, the losses to 1e-3 and every weight within a tenth of its tensor's largest
value: what merging or reordering the loops would break. Another torch version: skipped (regenerate
with ``python tests/test_loop_reference.py`` on the old code to compare there).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.toy_data import make_net, toy

REFERENCE = Path(__file__).parent / "data" / "loop_reference.npz"

def _weights(prefix: str, net, hist: dict) -> dict[str, np.ndarray]:
    out = {f"{prefix}/{k}": v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
    out[f"{prefix}/#steps"] = np.array([hist["steps"]])
    out[f"{prefix}/#losses"] = np.array([hist.get("loss_start", np.nan), hist.get("loss_end", np.nan)], np.float64)
    return out


def run_cases() -> dict[str, np.ndarray]:
    """Every case's weights, steps and first / last loss."""
    from pimc_core.learn import forecast as fc
    from pimc_core.learn.finetune import FinetuneConfig, finetune_classifier
    from pimc_core.learn.pretrain import AugmentConfig, PretrainConfig, pretrain

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out: dict[str, np.ndarray] = {}
        series, patches, labels = toy(n=48, c=2, t=10, b=2, k=3)
        ids = [1, 2, 3, 4]
        net = make_net(series, patches, n_classes=4)
        cfg = FinetuneConfig(epochs=3, batch_size=16, lr=5e-3, seed=2, head_steps=4, modality_dropout=0.3, mixup=0.4,
                             augment=AugmentConfig(drop_obs=0.2, series_noise=0.02, time_shift=0.5, amplitude=0.05))
        out.update(_weights("classifier", net, finetune_classifier(net, series, patches, labels, ids, cfg, device="cpu")))
        net = make_net(series, patches, n_classes=4)
        cfg = FinetuneConfig(epochs=4, max_steps=7, batch_size=20, lr=1e-2, seed=5, freeze=True)
        out.update(_weights("classifier_frozen", net, finetune_classifier(net, series, patches, labels, ids, cfg,
                                                                          device="cpu")))

        rng = np.random.default_rng(3)
        x = rng.uniform(0.2, 0.6, (40, 2, 6)).astype(np.float32)
        y = np.repeat(x[:, 0, -1:] + 0.1, 2, axis=1)
        y[::4, 1] = np.nan
        w = fc.ForecastWindows(x, y.astype(np.float32), np.arange(40), np.zeros(40, np.int64),
                               np.linspace(10, 300, 40).astype(np.float32))
        for name, freeze in (("forecaster", False), ("forecaster_frozen", True)):
            net = make_net(series[:, :, :8], patches, horizon=2, forecast_inputs=("phase",))
            cfg = FinetuneConfig(epochs=3, batch_size=12, lr=1e-2, warmup_steps=2, seed=4, freeze=freeze,
                                 augment=AugmentConfig(series_noise=0.05))
            hist = fc.train_forecaster(net, w.subset(np.arange(32)), cfg, device="cpu", val=w.subset(np.arange(32, 40)))
            out.update(_weights(name, net, hist))

        net = make_net(series, patches)
        res = pretrain(net, series, patches, PretrainConfig(steps=5, batch_size=16, warmup_steps=2, checkpoint_every=0,
                                                           seed=1), device="cpu")
        out.update(_weights("pretrain", net, {"steps": res.steps, "loss_start": res.losses[0],
                                              "loss_end": res.losses[-1]}))
        return out
    finally:
        torch.set_num_threads(old)


def cpu_vendor() -> str:
    """The CPU's ``vendor_id`` from ``/proc/cpuinfo`` (``unknown`` where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def test_training_loops_give_the_reference_weights():
    ref = np.load(REFERENCE)
    if str(ref["#torch"]) != torch.__version__:
        pytest.skip(f"reference written with torch {ref['#torch']}, this is {torch.__version__}")
    got = run_cases()
    assert set(got) == set(ref.files) - {"#torch", "#cpu"}
    if cpu_vendor() == str(ref["#cpu"]):
        for k in sorted(got):
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
        return
    for k in sorted(got):
        if k.endswith("#steps"):
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
        elif k.endswith("#losses"):
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-3, err_msg=k)
        elif ref[k].dtype.kind == "f" and ref[k].size:
            np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=0.1 * float(np.abs(ref[k]).max()) + 1e-6, err_msg=k)
        else:
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)


if __name__ == "__main__":  # regenerate: python tests/test_loop_reference.py
    data = run_cases()
    np.savez_compressed(REFERENCE, **data, **{"#torch": np.array(torch.__version__), "#cpu": np.array(cpu_vendor())})
    print(f"{REFERENCE}: {len(data)} arrays", file=sys.stderr)
