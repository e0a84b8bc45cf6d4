"""pimc_core.config: declared parameter constraints, YAML with ``extends``, overrides, merge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from pimc_core.config import (
    Checked,
    Integral,
    Interval,
    Real,
    StrOptions,
    apply_overrides,
    check_params,
    config_from_mapping,
    load_yaml_config,
    merge,
)
from pimc_core.errors import ConfigError, InputError


@dataclass
class _Demo(Checked):
    steps: int = 10
    lr: float = 1e-3
    mode: str = "a"
    share: float | None = None
    low: int = 0
    high: int = 5

    _config_name: ClassVar[str] = "demo"
    _parameter_constraints: ClassVar[dict] = {
        "steps": [Interval(Integral, 0, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "mode": [StrOptions({"a", "b"})],
        "share": [None, Interval(Real, 0, 1, closed="both")],
        "low": [Interval(Integral, 0, None, closed="left")],
        "high": [Interval(Integral, 0, None, closed="left")],
    }

    def _check(self) -> None:
        if self.low > self.high:
            raise ConfigError(f"demo: low ({self.low}) must not exceed high ({self.high})")


def test_declared_constraints_name_parameter_rule_and_value():
    assert _Demo().steps == 10 and _Demo(share=0.5).share == 0.5
    with pytest.raises(ConfigError, match=r"^demo\.steps must be an int in the range \[0, inf\); got -1$"):
        _Demo(steps=-1)
    with pytest.raises(ConfigError, match=r"demo\.lr must be a float in the range \(0\.0, inf\); got 0"):
        _Demo(lr=0)
    with pytest.raises(ConfigError, match=r"demo\.mode must be one of 'a', 'b'; got 'c'"):
        _Demo(mode="c")
    with pytest.raises(ConfigError, match=r"demo\.share must be None or a float in the range \[0\.0, 1\.0\]; got 2"):
        _Demo(share=2)
    # booleans are not numbers here (scikit-learn alone would take True as 1)
    for flag in (True, np.bool_(False)):
        with pytest.raises(ConfigError, match="demo.steps must be an int"):
            _Demo(steps=flag)
    # rules over several parameters run after the declared ones
    with pytest.raises(ConfigError, match=r"low \(6\) must not exceed high \(5\)"):
        _Demo(low=6)


def test_check_params_works_on_any_object():
    class Est:
        _parameter_constraints = {"k": [Interval(Integral, 1, None, closed="left")]}

        def __init__(self, k):
            self.k = k

    check_params(Est(3))
    with pytest.raises(ConfigError, match=r"^Est\.k must be"):
        check_params(Est(0))
    with pytest.raises(ConfigError, match=r"^series\.k must be"):
        check_params(Est(0), where="series")


def test_config_from_mapping_converts_and_names_unknown_keys():
    cfg = config_from_mapping(_Demo, {"steps": "12", "lr": "1e-2", "share": "null"}, "demo")
    assert (cfg.steps, cfg.lr, cfg.share) == (12, 0.01, None)
    with pytest.raises(ConfigError, match=r"demo: unknown key\(s\) 'stepz' \(known: steps, lr"):
        config_from_mapping(_Demo, {"stepz": 1}, "demo")
    with pytest.raises(ConfigError, match="demo.steps must be an integer; got 'many'"):
        config_from_mapping(_Demo, {"steps": "many"}, "demo")


def test_overrides_are_checked_against_the_dataclass():
    data = apply_overrides({}, ["steps=3", "mode=b"], _Demo)
    assert data == {"steps": 3, "mode": "b"}
    with pytest.raises(ConfigError, match="unknown key 'nope'"):
        apply_overrides({}, ["nope=1"], _Demo)
    with pytest.raises(ConfigError, match="is not KEY=VALUE"):
        apply_overrides({}, ["steps"], _Demo)


def test_merge_is_deep_and_shares_nothing():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    over = {"a": {"y": [3]}, "c": {"z": 1}}
    out = merge(base, over)
    assert out == {"a": {"x": 1, "y": [3]}, "b": 2, "c": {"z": 1}}
    out["a"]["x"] = 99
    out["c"]["z"] = 99
    assert base["a"]["x"] == 1 and over["c"]["z"] == 1


def test_yaml_extends_merges_and_refuses_cycles(tmp_path):
    (tmp_path / "base.yaml").write_text("pretrain: {steps: 5, lr: 0.1}\nseed: 1\n")
    (tmp_path / "run.yaml").write_text("extends: base.yaml\npretrain: {steps: 7}\n")
    assert load_yaml_config(tmp_path / "run.yaml") == {"pretrain": {"steps": 7, "lr": 0.1}, "seed": 1}
    (tmp_path / "self.yaml").write_text("extends: self.yaml\nseed: 1\n")
    with pytest.raises(ConfigError, match=r"self\.yaml: 'extends' makes a cycle"):
        load_yaml_config(tmp_path / "self.yaml")
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match=r"'extends' makes a cycle \(.*a\.yaml -> .*b\.yaml -> .*a\.yaml\)"):
        load_yaml_config(tmp_path / "a.yaml")
    with pytest.raises(InputError, match="config file not found"):
        load_yaml_config(tmp_path / "missing.yaml")
