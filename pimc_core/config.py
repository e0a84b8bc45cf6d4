"""Parameters: declared once, checked in one place, read from YAML and ``key=value`` overrides.

Every configuration of PIMC (pretraining, fine-tuning, encoders, ``pimc fit``, the training
CLI, recurrence plots, series models, map runs) is a dataclass that inherits :class:`Checked` and
states each parameter on one line, its default and what it accepts, with :func:`param`; the
class decorator :func:`declared` collects them. This is the one way to declare parameters::

    @declared
    @dataclass
    class ExampleConfig(Checked):
        steps: int = param(150, COUNT)                       # default, then what it accepts
        lr: float = param(1e-3, POSITIVE)
        mode: str = param("auto", StrOptions({"auto", "grid"}))
        seed: int | None = param(None, None, COUNT)          # None or a count
        augment: AugmentConfig = param(AugmentConfig, factory=AugmentConfig)  # made per object
        extra: dict = param(NO_VALIDATION, factory=dict)     # free-form: checked by its consumer

        _config_name: ClassVar[str] = "example"              # the prefix of the messages

        def _check(self) -> None:                            # rules that tie several parameters
            ...

What a field accepts is written in scikit-learn's parameter-constraint vocabulary
(:class:`Interval`, :class:`StrOptions`, :class:`Options`, :class:`HasMethods`, a type,
``"boolean"``, ``None``, ...; a value is accepted when it satisfies any one of them), with the
common ranges named here (:data:`POSITIVE_INT`, :data:`COUNT`, :data:`POSITIVE`,
:data:`NON_NEGATIVE`, :data:`FRACTION`). A free-form field (a mapping checked by its consumer, a
section the class's ``_check`` reads) accepts :data:`NO_VALIDATION` (``"no_validation"``,
scikit-learn's marker for a parameter checked elsewhere), so that every field is declared.

:func:`declared` produces the class's ``_parameter_constraints`` (name -> accepted constraints):
the dict scikit-learn estimators write by hand, so configs and estimators share one vocabulary
and :func:`check_params` checks either (estimators keep their dict as scikit-learn defines it).

:class:`Checked` runs, after ``__init__``: the class's ``_convert()`` if it has one (values
brought to their canonical form first: lists to tuples, a mapping to its section), then
:func:`check_params`, then ``_check()``; a config class never overrides ``__post_init__``. A bad
value is refused where the object is made, with one :class:`~pimc_core.errors.ConfigError` line
that names the parameter, what it accepts and what it got: ``pretrain.steps must be an int in
the range [0, inf); got -1``. Booleans are never accepted as numbers (YAML ``yes`` for ``steps``
is an error, not 1).

Reading: :func:`load_yaml_config` (``extends: base.yaml`` merges a base config under a file,
cycles are refused), :func:`apply_overrides` (dotted ``key=value``, YAML values, keys checked
against the dataclasses), :func:`merge` (the one deep merge), :func:`config_from_mapping`
(values converted to the annotated types, unknown keys named with the known ones) and
:func:`with_section_defaults` (a partial section keeps the defaults of the keys it omits).
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
import types
import typing
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
from sklearn.utils._param_validation import (  # the constraint vocabulary of scikit-learn estimators
    HasMethods,
    Interval,
    Options,
    StrOptions,
    make_constraint,
)

from pimc_core.errors import ConfigError, InputError

__all__ = [
    "COUNT",
    "FRACTION",
    "NON_NEGATIVE",
    "NO_VALIDATION",
    "POSITIVE",
    "POSITIVE_INT",
    "Checked",
    "HasMethods",
    "Integral",
    "Interval",
    "Options",
    "Real",
    "StrOptions",
    "apply_overrides",
    "check_params",
    "config_from_mapping",
    "declared",
    "load_yaml_config",
    "merge",
    "param",
    "with_section_defaults",
]

Integral = numbers.Integral
Real = numbers.Real

#: The ranges most parameters accept (scikit-learn :class:`Interval` objects, shared so that a
#: rule reads the same everywhere): 1, 2, ... / 0, 1, 2, ... / a number > 0 / >= 0 / in [0, 1)
#: (dropout, smoothing, a share of observations dropped).
POSITIVE_INT = Interval(Integral, 1, None, closed="left")
COUNT = Interval(Integral, 0, None, closed="left")
POSITIVE = Interval(Real, 0, None, closed="neither")
NON_NEGATIVE = Interval(Real, 0, None, closed="left")
FRACTION = Interval(Real, 0, 1, closed="left")

#: scikit-learn's marker for a parameter that is not checked here (free-form, or checked by the
#: class's ``_check`` or by its consumer): ``param(default, NO_VALIDATION)``.
NO_VALIDATION = "no_validation"


# ============================================================================ declared constraints
def _text(constraint: Any) -> str:
    if isinstance(constraint, Options):  # StrOptions too; sorted, so messages do not depend on set order
        return "one of " + ", ".join(sorted(repr(o) for o in constraint.options))
    return str(constraint)


def _describe(constraints: Sequence[Any]) -> str:
    shown = [_text(c) for c in constraints if not getattr(c, "hidden", False)]
    if len(shown) <= 1:
        return "".join(shown)
    return f"{', '.join(shown[:-1])} or {shown[-1]}"


def _satisfies(value: Any, constraint: Any) -> bool:
    # scikit-learn counts True / False as integers; a configuration must not
    if isinstance(constraint, Interval) and isinstance(value, (bool, np.bool_)):
        return False
    return constraint.is_satisfied_by(value)


def check_params(obj: Any, constraints: Mapping[str, Sequence[Any]] | None = None, where: str | None = None) -> None:
    """Check the attributes of ``obj`` against declared constraints.

    Args:
        obj: any object with the parameters as attributes (a dataclass, an estimator).
        constraints: parameter name → list of accepted constraints (scikit-learn's vocabulary:
            :class:`Interval`, :class:`StrOptions`, :class:`Options`, a type, ``"boolean"``,
            ``None``, ...) or :data:`NO_VALIDATION` (not checked here); default:
            ``obj._parameter_constraints``.
        where: the prefix of the messages (default: ``obj._config_name`` or the class name).

    Raises:
        ConfigError: ``"{where}.{name} must be {what it accepts}; got {value!r}"``.
    """
    constraints = getattr(obj, "_parameter_constraints", {}) if constraints is None else constraints
    where = where or getattr(obj, "_config_name", None) or type(obj).__name__
    for name, allowed in constraints.items():
        if isinstance(allowed, str) and allowed == NO_VALIDATION:
            continue
        value = getattr(obj, name)
        made = [make_constraint(c) for c in allowed]
        if not any(_satisfies(value, c) for c in made):
            raise ConfigError(f"{where}.{name} must be {_describe(made)}; got {value!r}")


class Checked:
    """Mixin for configuration dataclasses: checks ``_parameter_constraints`` after ``__init__``.

    Subclasses state their fields with :func:`param` and are decorated with :func:`declared`
    (which fills ``_parameter_constraints``); ``_config_name`` (optional) is the prefix of the
    messages, e.g. ``"pretrain"``. Two optional methods: ``_convert(self)`` brings values to
    their canonical form before the checks (lists to tuples, a mapping to its section), and
    ``_check(self)`` holds the rules that involve several parameters, called after the declared
    constraints hold. Subclasses do not override ``__post_init__``.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {}
    _config_name: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        convert = getattr(self, "_convert", None)
        if convert is not None:
            convert()
        check_params(self)
        check = getattr(self, "_check", None)
        if check is not None:
            check()


# ============================================================================ typed mappings
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` converted to the annotated type ``tp`` (from YAML or a ``key=value`` string)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.strip().lower() in ("none", "null", "~") and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return config_from_mapping(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.strip().lower() in ("true", "yes", "on", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{where} must be true or false; got {value!r}")
    if tp in (int, float):  # never from a boolean; an int from a whole float, a float from an int
        if not isinstance(value, bool):
            if isinstance(value, int) or (isinstance(value, float) and (tp is float or value.is_integer())):
                return tp(value)
            if isinstance(value, str):
                try:
                    return tp(value.strip())
                except ValueError:
                    pass
        raise ConfigError(f"{where} must be {'an integer' if tp is int else 'a number'}; got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where} must be a string; got {value!r}")
    if origin in (tuple, list) or tp in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list; got {value!r}")
        item = args[0] if args else Any
        out = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if (origin is tuple or tp is tuple) else out
    if origin is dict or tp is dict:
        if value is None:
            return {}
        if isinstance(value, str):
            import yaml

            value = yaml.safe_load(value)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping; got {value!r}")
        return dict(value)
    return value


def config_from_mapping(cls: type, data: Mapping[str, Any] | None, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a mapping, converting values to the annotated types.

    Raises:
        ConfigError: unknown keys (named, with the known ones), wrong types, or the dataclass's
            own validation.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys to values; got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = [str(k) for k in data if k not in known]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(repr(k) for k in unknown)} (known: {', '.join(known)})"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], cls: type | None = None) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys, YAML values) to a config mapping, in place.

    With ``cls`` the dotted path is checked against the dataclass fields (unknown keys are a
    ConfigError naming them); keys inside free-form mapping fields (e.g.
    ``model.rp_encoder.width=32``) are passed through for that section's own checks.
    """
    import yaml

    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. pretrain.steps=200)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has no key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        parts = key.split(".")
        if cls is not None:
            _check_path(cls, parts, key)
        node = data
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"override {key}: '{p}' is not a section")
            node = nxt
        node[parts[-1]] = value
    return data


def _check_path(cls: type, parts: list[str], key: str) -> None:
    tp: Any = cls
    for i, p in enumerate(parts):
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            if p not in hints:
                where = ".".join(parts[:i]) or "the top level"
                raise ConfigError(
                    f"override {key}: unknown key '{p}' in {where} (known: {', '.join(f.name for f in dataclasses.fields(tp))})"
                )
            tp = hints[p]
            if typing.get_origin(tp) in (typing.Union, types.UnionType):
                tp = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
            if typing.get_origin(tp) in (list, tuple) and dataclasses.is_dataclass(typing.get_args(tp)[0] if typing.get_args(tp) else None):
                return  # list of sections: index-free overrides are not supported deeper
        else:
            return  # free-form mapping: checked by its consumer


def load_yaml_config(path: str | os.PathLike, *, _chain: Sequence[Path] = ()) -> dict[str, Any]:
    """Read a YAML config; ``extends: OTHER.yaml`` (relative to the file) merges a base config.

    Raises:
        InputError: the file is missing. ConfigError: not YAML, not a mapping, or an
            ``extends`` chain that comes back to a file already in it.
    """
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: config file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{p}: not a readable YAML config ({str(e).splitlines()[0]})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config is a mapping of keys to values")
    base = data.pop("extends", None)
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"{p}: 'extends' names one YAML file, e.g. extends: base.yaml; got {base!r}")
    if base:
        parent_path = (p.parent / str(base)).resolve()
        chain = tuple(_chain) + (p.resolve(),)
        if parent_path in chain:
            cycle = " -> ".join(str(c) for c in chain + (parent_path,))
            raise ConfigError(f"{p}: 'extends' makes a cycle ({cycle})")
        data = merge(load_yaml_config(parent_path, _chain=chain), data)
    return data


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a deep copy of ``base``, mapping by mapping (other values replace).

    Neither argument is modified and the result shares nothing with them.
    """
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def with_section_defaults(base: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a partial mapping over defaults, section by section.

    ``base`` is a dataclass *class* (its field defaults are used) or instance (its values). A
    section given partially keeps the defaults of the keys it does not set (e.g. fit's shorter
    pretraining stays in force when only ``pretrain.lr`` is given).
    """
    out: dict[str, Any] = {}
    is_cls = isinstance(base, type)
    for f in dataclasses.fields(base):
        cur = _field_default(f) if is_cls else getattr(base, f.name)
        if f.name in data:
            v = data[f.name]
            if dataclasses.is_dataclass(cur) and not isinstance(cur, type) and isinstance(v, Mapping):
                out[f.name] = with_section_defaults(cur, v)
            else:
                out[f.name] = v
        elif cur is not dataclasses.MISSING:
            out[f.name] = cur
    for k in data:
        if k not in out:
            out[k] = data[k]  # unknown: reported by config_from_mapping
    return out


def param(*default_and_accepts: Any, factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field stated on one line: its default and what it accepts.

    ``param(default, *accepts)``: ``default`` and the constraints a value may satisfy (any one of
    them; scikit-learn's vocabulary, see :func:`check_params`). ``param(*accepts, factory=make)``:
    the default is ``make()``, called for every new object (a list, a dict, a nested config
    section: values dataclasses refuse to share between objects). :data:`NO_VALIDATION` as the only
    constraint declares a field that is not checked here (free-form, or checked by the class's
    ``_check`` or by its consumer). :func:`declared` collects the constraints into the class's
    ``_parameter_constraints``.

    Raises:
        TypeError: no constraint given, or :data:`NO_VALIDATION` among others.
        ValueError: a constraint scikit-learn does not know (a typo fails when the class is
            defined).
    """
    if factory is None:
        if not default_and_accepts:
            raise TypeError("param: give the default and what the field accepts")
        default, *accepts = default_and_accepts
        field_default = {"default": default}
    else:
        accepts = list(default_and_accepts)
        field_default = {"default_factory": factory}
    if not accepts:
        raise TypeError(f"param: state what the field accepts (scikit-learn constraints, or {NO_VALIDATION!r})")
    if any(isinstance(a, str) and a == NO_VALIDATION for a in accepts):
        if len(accepts) > 1:
            raise TypeError(f"param: {NO_VALIDATION!r} is the only constraint of a field it is given to")
        return dataclasses.field(**field_default, metadata={"accepts": NO_VALIDATION})
    for a in accepts:
        make_constraint(a)  # ValueError for what scikit-learn does not know
    return dataclasses.field(**field_default, metadata={"accepts": accepts})


def declared(cls: type) -> type:
    """Class decorator (above ``@dataclass``): set ``cls._parameter_constraints`` from the
    :func:`param` fields, name -> accepted constraints (or :data:`NO_VALIDATION`).

    Raises:
        TypeError: a field not stated with :func:`param` (it would go unchecked unnoticed).
    """
    fields = dataclasses.fields(cls)
    bare = [f.name for f in fields if "accepts" not in f.metadata]
    if bare:
        raise TypeError(f"{cls.__name__}: state {', '.join(bare)} with param(default, *accepts)")
    cls._parameter_constraints = {f.name: f.metadata["accepts"] for f in fields}
    return cls
