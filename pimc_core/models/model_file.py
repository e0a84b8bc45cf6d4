"""The ``.pimc`` model file: weights and metadata in ONE file, loadable without running code.

A ``.pimc`` file is a plain `safetensors <https://huggingface.co/docs/safetensors>`_ file:

* an 8-byte little-endian header length, a JSON header (tensor names, dtypes, shapes, byte
  offsets) and the raw tensor bytes. Nothing in it is ever unpickled or executed, so a model
  file from an untrusted source cannot run code (unlike ``torch.save`` / pickle files, which
  :func:`load_model` refuses before reading them any further);
* tensor names are ``"<module>.<parameter>"``, e.g. ``"rp_encoder.stem.0.weight"``: the text
  before the first dot is the module (``rp_encoder``, ``patch_encoder``, ``series_encoder``,
  ``classifier``, ``forecaster``, ...), the rest is the key in that module's ``state_dict``;
* the safetensors ``__metadata__`` (a string → string map) holds exactly two keys:
  ``"format_version"`` (``"1"``) and ``"pimc"``, the JSON text of the metadata, whose schema
  and validation are :mod:`pimc_core.models.model_metadata`; whether data fits a model is
  :func:`pimc_core.models.compatibility.check_compatible`.

Typical use::

    save_model("crops.pimc", {"rp_encoder": enc.state_dict(), "classifier": head.state_dict()},
               {"task": "pixel_classification", "indices": ["ndvi", "evi", "savi"], ...})
    weights, meta = load_model("crops.pimc")
    enc.load_state_dict(weights["rp_encoder"])
    check_compatible(meta, bands=series.band_names)   # BandError if e.g. 'blue' is missing
"""

from __future__ import annotations

import datetime as _dt
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.input_files import local_path
from pimc_core.models.model_metadata import FORMAT_VERSION, ModelMetadata, as_metadata, check_module_name

__all__ = [
    "FORMAT_VERSION",
    "ModelMetadata",
    "load_model",
    "read_metadata",
    "save_model",
]

# safetensors refuses headers above 100 MB; anything bigger is not one of ours.
_MAX_HEADER = 100_000_000


# --------------------------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------------------------


def _flatten(tensors: Mapping[str, Any]) -> dict[str, Any]:
    """``{module: {param: T}}`` or ``{"module.param": T}`` → ``{"module.param": T}`` (cpu, contiguous)."""
    import torch

    if not isinstance(tensors, Mapping) or not tensors:
        raise ConfigError("save_model: tensors must be a non-empty mapping of module → state dict")
    nested = [isinstance(v, Mapping) for v in tensors.values()]
    flat: dict[str, Any] = {}
    if all(nested):
        for mod, sd in tensors.items():
            check_module_name(mod, "save_model")
            if not sd:
                raise ConfigError(f"save_model: module {mod!r} has no tensors")
            for key, t in sd.items():
                if not isinstance(key, str) or not key:
                    raise ConfigError(f"save_model: module {mod!r} has a bad parameter name {key!r}")
                flat[f"{mod}.{key}"] = t
    elif not any(nested):
        for key, t in tensors.items():
            if not isinstance(key, str) or "." not in key or key.startswith(".") or key.endswith("."):
                raise ConfigError(
                    f"save_model: flat tensor name {key!r} must be 'module.parameter' "
                    "(e.g. 'rp_encoder.stem.0.weight')"
                )
            flat[key] = t
    else:
        raise ConfigError("save_model: tensors mixes state dicts and single tensors; give {module: state_dict}")

    out: dict[str, Any] = {}
    seen_storage: set[int] = set()
    for key, t in flat.items():
        if not isinstance(t, torch.Tensor):
            raise ConfigError(f"save_model: {key!r} is a {type(t).__name__}, not a torch.Tensor")
        t = t.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen_storage or t.numel() != t.untyped_storage().nbytes() // max(t.element_size(), 1):
            t = t.clone()  # shared / tied / view tensors: safetensors wants one owner per storage
        if t.numel():
            seen_storage.add(t.untyped_storage().data_ptr())
        out[key] = t
    return out


def save_model(
    path: str | Path,
    tensors: Mapping[str, Mapping[str, Any]] | Mapping[str, Any],
    metadata: ModelMetadata | Mapping[str, Any],
) -> Path:
    """Write weights and metadata to one ``.pimc`` (safetensors) file, atomically.

    Args:
        path: Output file (conventionally ``*.pimc``); its folder must exist. An existing file
            is replaced only once the new one is completely written (temporary file in the same
            folder + ``os.replace``).
        tensors: ``{module: state_dict}`` (e.g. ``{"rp_encoder": enc.state_dict()}``), or an
            already flat ``{"module.param": tensor}`` mapping. Tensors of any shape/dtype; they
            are saved detached, on CPU.
        metadata: A :class:`ModelMetadata` or a dict following the schema of this module.
            ``created`` and ``pimc_version`` are filled in when missing.

    Returns:
        The path written.

    Raises:
        ConfigError: Invalid metadata (message names the key) or malformed ``tensors``.
        InputError: The output folder does not exist or the file cannot be written.
    """
    from safetensors.torch import save as st_save

    from pimc_core import __version__
    from pimc_core.io.atomic import atomic_path

    meta = as_metadata(metadata)
    if meta.created is None:
        meta.created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if meta.pimc_version is None:
        meta.pimc_version = __version__
    flat = _flatten(tensors)
    header = {"format_version": str(FORMAT_VERSION), "pimc": json.dumps(meta.to_dict(), ensure_ascii=False)}
    path = Path(path)
    try:
        with atomic_path(path) as tmp:  # bytes written by Python: a full disk is an OSError (one line)
            tmp.write_bytes(st_save(flat, metadata=header))
    except OSError as exc:
        raise InputError(f"{path}: cannot write model file ({exc.strerror or exc})") from None
    return path


def _read_header(path: Path) -> tuple[dict[str, Any], bytes]:
    """Validate the safetensors framing WITHOUT interpreting the payload; return (header, bytes).

    Raises:
        InputError: Missing file, or a file that is not a safetensors file (pickle, zip, ...).
    """
    if not path.exists():
        raise InputError(f"{path}: model file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read model file ({exc.strerror or exc})") from None

    def not_ours(why: str) -> InputError:
        hint = ""
        if data[:1] == b"\x80" or data[:2] == b"PK":
            hint = " (it looks like a pickle / torch.save file, which PIMC never loads because it can run code)"
        return InputError(f"{path}: not a PIMC model file: {why}{hint}")

    if len(data) < 8:
        raise not_ours(f"only {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n < 2 or n > _MAX_HEADER or 8 + n > len(data):
        raise not_ours("no safetensors header")
    raw = data[8 : 8 + n]
    if raw[:1] != b"{":
        raise not_ours("no safetensors header")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise not_ours("corrupt safetensors header") from None
    if not isinstance(header, dict):
        raise not_ours("corrupt safetensors header")
    return header, data


def _parse_metadata(path: Path, header: Mapping[str, Any]) -> dict[str, Any]:
    st_meta = header.get("__metadata__") or {}
    if not isinstance(st_meta, dict) or "pimc" not in st_meta:
        raise InputError(f"{path}: a safetensors file without PIMC metadata, not a .pimc model")
    version = st_meta.get("format_version")
    try:
        version_i = int(str(version))
    except ValueError:
        raise InputError(f"{path}: bad format_version {version!r}") from None
    if version_i > FORMAT_VERSION:
        raise InputError(
            f"{path}: model file format version {version_i} is newer than this PIMC supports "
            f"({FORMAT_VERSION}); upgrade PIMC to read it"
        )
    if version_i < 1:
        raise InputError(f"{path}: bad format_version {version!r}")
    try:
        meta = json.loads(st_meta["pimc"])
    except (TypeError, json.JSONDecodeError):
        raise InputError(f"{path}: PIMC metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: PIMC metadata is not a JSON object")
    try:
        return ModelMetadata.from_dict(meta).to_dict()
    except ConfigError as exc:
        raise InputError(f"{path}: {exc}") from None
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The validated metadata of a ``.pimc`` file, without building any tensor.

    Raises:
        InputError: Not a (readable) PIMC model file, or a newer format version.
    """
    path = local_path(path, "model file")
    header, _ = _read_header(path)
    return _parse_metadata(path, header)


def load_model(path: str | Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Load a ``.pimc`` file. No pickle, no code execution: pickle payloads are refused unread.

    The whole file is read into memory (models are small), so the file is not kept open or
    memory-mapped afterwards and can be replaced while the model is in use.

    Args:
        path: The ``.pimc`` file.

    Returns:
        ``(weights, metadata)``: ``weights[module][param]`` are CPU tensors (the module's
        ``state_dict``, ready for ``load_state_dict``); ``metadata`` is the validated dict
        (schema in the module docstring).

    Raises:
        InputError: Missing file; not a safetensors file (e.g. a ``torch.save``/pickle file);
            safetensors without PIMC metadata; corrupt tensor data; a format version newer than
            :data:`FORMAT_VERSION`; invalid metadata.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = local_path(path, "model file")
    header, data = _read_header(path)
    meta = _parse_metadata(path, header)
    try:
        flat = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: corrupt model file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    weights: dict[str, dict[str, Any]] = {}
    for key in sorted(flat):
        mod, sep, param = key.partition(".")
        if not sep or not mod or not param:
            raise InputError(f"{path}: tensor name {key!r} is not 'module.parameter'")
        weights.setdefault(mod, {})[param] = flat[key]
    return weights, meta
