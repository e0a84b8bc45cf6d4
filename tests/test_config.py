"""pimc_core.config: declared parameter constraints, YAML with ``extends``, overrides, merge."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

import pimc_core
import training
from pimc_core.config import (
    NO_VALIDATION,
    Checked,
    Integral,
    Interval,
    Real,
    StrOptions,
    apply_overrides,
    check_params,
    config_from_mapping,
    declared,
    load_yaml_config,
    merge,
    param,
)
from pimc_core.errors import ConfigError, InputError


@declared
@dataclass
class _Demo(Checked):
    steps: int = param(10, Interval(Integral, 0, None, closed="left"))
    lr: float = param(1e-3, Interval(Real, 0, None, closed="neither"))
    mode: str = param("a", StrOptions({"a", "b"}))
    share: float | None = param(None, None, Interval(Real, 0, 1, closed="both"))
    low: int = param(0, Interval(Integral, 0, None, closed="left"))
    high: int = param(5, Interval(Integral, 0, None, closed="left"))

    _config_name: ClassVar[str] = "demo"

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


# ============================================================================ param + declared
@declared
@dataclass
class _Sections(Checked):
    demo: _Demo = param(_Demo, factory=lambda: _Demo(steps=3))
    names: list[str] = param(list, factory=list)
    free: dict[str, Any] = param(NO_VALIDATION, factory=dict)  # checked by its consumer
    tag: Any = param(None, NO_VALIDATION)

    _config_name: ClassVar[str] = "sections"

    def _convert(self) -> None:
        if isinstance(self.demo, dict):
            self.demo = _Demo(**self.demo)


def test_declared_collects_every_param_into_the_constraints():
    assert list(_Demo._parameter_constraints) == ["steps", "lr", "mode", "share", "low", "high"]
    assert _Demo._parameter_constraints["share"][0] is None
    assert _Sections._parameter_constraints["free"] == NO_VALIDATION == "no_validation"  # scikit-learn's form
    # the same object checked by hand (an estimator's dict) and by the declaration
    check_params(_Demo(), {"steps": [Interval(Integral, 0, None, closed="left")]})


def test_param_factory_makes_a_fresh_default_for_every_object():
    a, b = _Sections(), _Sections()
    assert a.demo == _Demo(steps=3) and a.demo is not b.demo
    a.names.append("x")
    assert b.names == [] and a.free is not b.free
    with pytest.raises(ConfigError, match=r"^sections\.names must be an instance of 'list'; got \('x',\)$"):
        _Sections(names=("x",))


def test_no_validation_accepts_anything_and_convert_runs_before_the_checks():
    assert _Sections(free=[1, "anything"], tag=object()).free == [1, "anything"]
    assert _Sections(demo={"mode": "b"}).demo == _Demo(mode="b")  # converted, then checked
    with pytest.raises(ConfigError, match=r"^demo\.mode must be one of 'a', 'b'; got 'c'$"):
        _Sections(demo={"mode": "c"})


def test_param_and_declared_refuse_what_would_go_unchecked():
    with pytest.raises(TypeError, match="state what the field accepts"):
        param(1)
    with pytest.raises(TypeError, match="state what the field accepts"):
        param(factory=list)
    with pytest.raises(TypeError, match="give the default"):
        param()
    with pytest.raises(TypeError, match="'no_validation' is the only constraint"):
        param(None, None, NO_VALIDATION)
    with pytest.raises(ValueError):  # a typo fails when the class is defined
        param(1, "bolean")

    with pytest.raises(TypeError, match=r"_Bare: state plain with param"):
        @declared
        @dataclass
        class _Bare(Checked):
            ok: int = param(1, int)
            plain: int = 2


def _checked_classes() -> list[type]:
    """Every Checked subclass defined in pimc_core and training, after importing all their modules."""
    for pkg in (pimc_core, training):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(info.name)  # an import error fails the test: no module is skipped
    found, todo = [], list(Checked.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in ("pimc_core", "training"):
            found.append(cls)
    return sorted(set(found), key=lambda c: (c.__module__, c.__name__))


def test_every_field_of_every_config_is_declared():
    classes = _checked_classes()
    assert len(classes) >= 23, [c.__name__ for c in classes]
    for cls in classes:
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(cls._parameter_constraints) == fields, f"{cls.__module__}.{cls.__name__}"
        assert "__post_init__" not in vars(cls), f"{cls.__name__}: use _convert / _check"


# ============================================================================ fields newly declared
def _newly_declared():
    from pimc_core.learn.augment import AugmentConfig
    from pimc_core.learn.finetune import FinetuneConfig
    from pimc_core.learn.pretrain import PretrainConfig
    from pimc_core.maps.run import RunOptions
    from pimc_core.models.pimc_config import PimcModelConfig
    from pimc_core.models.tempcnn import CNN1DConfig

    # the fields that had no declared constraint before: values the training code fails on (a
    # negative learning rate or weight decay, label smoothing above 1, an executor without
    # map_windows, a temperature <= 0) or that meant nothing (a negative step count, seed or
    # clip norm, a non-boolean switch) are refused where the config is made
    return [
        (FinetuneConfig, "lr", 0, r"finetune\.lr must be a float in the range \(0\.0, inf\); got 0"),
        (FinetuneConfig, "weight_decay", -1e-4, r"finetune\.weight_decay must be a float in the range \[0\.0, inf\); got -0\.0001"),
        (FinetuneConfig, "encoder_lr_scale", -1, r"finetune\.encoder_lr_scale must be .*; got -1"),
        (FinetuneConfig, "max_steps", -1, r"finetune\.max_steps must be an int in the range \[0, inf\); got -1"),
        (FinetuneConfig, "warmup_steps", 1.5, r"finetune\.warmup_steps must be an int .*; got 1\.5"),
        (FinetuneConfig, "freeze", 1, r"finetune\.freeze must be an instance of 'bool' or an instance of 'numpy\.bool_'; got 1"),
        (FinetuneConfig, "label_smoothing", 1.5, r"finetune\.label_smoothing must be a float in the range \[0\.0, 1\.0\); got 1\.5"),
        (FinetuneConfig, "mixup", -0.2, r"finetune\.mixup must be .*; got -0\.2"),
        (FinetuneConfig, "seed", -1, r"finetune\.seed must be an int in the range \[0, inf\); got -1"),
        (FinetuneConfig, "augment", None, r"finetune\.augment must be an instance of 'pimc_core\.learn\.augment\.AugmentConfig'; got None"),
        (PretrainConfig, "weight_decay", -1, r"pretrain\.weight_decay must be .*; got -1"),
        (PretrainConfig, "min_lr_ratio", -0.1, r"pretrain\.min_lr_ratio must be .*; got -0\.1"),
        (PretrainConfig, "grad_clip", -1, r"pretrain\.grad_clip must be .*; got -1"),
        (PretrainConfig, "amp", "yes", r"pretrain\.amp must be an instance of 'bool'.*; got 'yes'"),
        (PretrainConfig, "augment", 0.2, r"pretrain\.augment must be an instance of 'pimc_core\.learn\.augment\.AugmentConfig'; got 0\.2"),
        (AugmentConfig, "patch_flip", "no", r"augment\.patch_flip must be an instance of 'bool'.*; got 'no'"),
        (CNN1DConfig, "seed", -3, r"cnn1d\.seed must be an int in the range \[0, inf\); got -3"),
        (PimcModelConfig, "init_temperature", 0.0, r"model\.init_temperature must be a float in the range \(0\.0, inf\); got 0\.0"),
        (PimcModelConfig, "rp_coords", "yes", r"model\.rp_coords must be an instance of 'bool'.*; got 'yes'"),
        (PimcModelConfig, "forecast_index", None, r"model\.forecast_index must be an instance of 'str'; got None"),
        (PimcModelConfig, "forecast_year_steps", -1, r"model\.forecast_year_steps must be .*; got -1\.0"),
        (RunOptions, "executor", "dask", r"map\.executor must be None or an object implementing 'map_windows'; got 'dask'"),
    ]


@pytest.mark.parametrize("case", range(len(_newly_declared())))
def test_fields_declared_now_refuse_values_in_one_line(case):
    cls, name, value, message = _newly_declared()[case]
    with pytest.raises(ConfigError, match="^" + message + "$"):
        cls(**{name: value})


def test_fields_declared_now_keep_the_values_in_use():
    from pimc_core.learn.finetune import FinetuneConfig
    from pimc_core.learn.pretrain import PretrainConfig
    from pimc_core.models.pimc_config import PimcModelConfig

    # 0 still switches a feature off; numpy booleans count as booleans
    cfg = FinetuneConfig(max_steps=0, encoder_lr_scale=0.0, weight_decay=0.0, warmup_steps=0, mixup=0.0,
                         label_smoothing=0.0, freeze=np.bool_(True))
    assert cfg.freeze and cfg.max_steps == 0
    assert PretrainConfig(grad_clip=0.0, min_lr_ratio=0.0, amp=False).grad_clip == 0.0
    assert PimcModelConfig(forecast_year_steps=0, rp_coords=True).forecast_year_steps == 0.0
