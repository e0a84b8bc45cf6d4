"""Class tables: the classes.json format (id, name, colour), its checks, and the default palette."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable, Mapping, Sequence

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.input_files import check_input_file

__all__ = ["PALETTE", "TAB20", "default_class_table", "hex_to_rgba", "load_class_table", "normalise_class_table", "palette_color"]

#: Tableau 20 (matplotlib's ``tab20``): ten hues, each dark then light.
TAB20: tuple[str, ...] = (
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
    "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
)
#: A qualitative palette for classes or clusters without a colour: :data:`TAB20`, the ten dark
#: colours first, then the ten light ones.
PALETTE: tuple[str, ...] = TAB20[0::2] + TAB20[1::2]


_HEX = re.compile(r"^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")


def hex_to_rgba(color: str | Sequence[int]) -> tuple[int, int, int, int]:
    """``"#rrggbb"`` / ``"#rrggbbaa"`` (or an (r, g, b[, a]) sequence) → (r, g, b, a) ints.

    Raises:
        ConfigError: not a colour.
    """
    if isinstance(color, str):
        m = _HEX.match(color.strip())
        if not m:
            raise ConfigError(f"colour {color!r} is not '#rrggbb'")
        rgb = m.group(1)
        alpha = int(m.group(2), 16) if m.group(2) else 255
        return int(rgb[0:2], 16), int(rgb[2:4], 16), int(rgb[4:6], 16), alpha
    try:
        vals = [int(v) for v in color]
    except (TypeError, ValueError):
        raise ConfigError(f"colour {color!r} is not '#rrggbb' or (r, g, b)") from None
    if len(vals) not in (3, 4) or not all(0 <= v <= 255 for v in vals):
        raise ConfigError(f"colour {color!r} is not '#rrggbb' or (r, g, b)")
    return (vals[0], vals[1], vals[2], vals[3] if len(vals) == 4 else 255)


def _rgb_hex(rgba: tuple[int, int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def palette_color(i: int) -> str:
    """The ``i``-th colour (0-based) of :data:`PALETTE`, cycling."""
    return PALETTE[i % len(PALETTE)]


def normalise_class_table(class_table: Sequence[Mapping], *, nodata: int = 0, max_id: int = 255) -> list[dict]:
    """Check a class table and fill in missing names and colours.

    Args:
        class_table: ``[{"id": 1, "name": "wheat", "color": "#e3b505"}, ...]``; ``name`` and
            ``color`` may be missing or None.
        nodata: the value reserved for no data (no class may use it).
        max_id: the largest id the map's data type can hold.

    Returns:
        A list of ``{"id": int, "name": str, "color": "#rrggbb"}`` in the given order.

    Raises:
        ConfigError: an id that is not an integer, repeated, equal to ``nodata`` or out of range.
    """
    out: list[dict] = []
    seen: set[int] = set()
    for i, entry in enumerate(class_table):
        try:
            cid = entry["id"]
        except (KeyError, TypeError):
            raise ConfigError(f"class table entry {i} has no 'id'") from None
        if isinstance(cid, bool) or not hasattr(cid, "__index__"):
            raise ConfigError(f"class table entry {i}: id {cid!r} is not an integer")
        cid = int(cid)
        if cid == nodata or not 0 <= cid <= max_id:
            raise ConfigError(
                f"class id {cid} cannot be stored: ids must lie in 0..{max_id} and differ from the nodata value {nodata}"
            )
        if cid in seen:
            raise ConfigError(f"class id {cid} appears twice in the class table")
        seen.add(cid)
        name = entry.get("name") or f"class {cid}"
        color = entry.get("color") or palette_color(i)
        out.append({"id": cid, "name": str(name), "color": _rgb_hex(hex_to_rgba(color))})
    return out


def load_class_table(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a ``classes.json``: a list of ``{"id": int, "name": str, "color": "#rrggbb"}``.

    Missing names become ``"class N"``, missing colours palette colours.

    Raises:
        InputError: unreadable or not JSON. ConfigError: not a list of classes, no class at all,
            bad ids / colours, one name for two ids.
    """
    p = check_input_file(path, "class table", missing=f"{path}: class table not found")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: class table not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{p}: not a readable JSON class table ({e})") from None
    if isinstance(data, Mapping) and "classes" in data:
        data = data["classes"]
    if not isinstance(data, list) or not all(isinstance(c, Mapping) for c in data):
        raise ConfigError(f"{p}: a class table is a JSON list of {{\"id\", \"name\", \"color\"}} objects")
    if not data:
        raise ConfigError(f"{p}: no classes (the class table is empty; list at least one {{\"id\", \"name\", \"color\"}})")
    for i, c in enumerate(data):
        unknown = [k for k in c if k not in ("id", "name", "color")]
        if unknown:
            raise ConfigError(f"{p}: class {i} has unknown key(s) {', '.join(map(repr, unknown))} (allowed: id, name, color)")
    try:
        table = normalise_class_table(data)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    seen: dict[str, int] = {}
    for c in table:  # vector labels name their classes: one name must mean one class
        other = seen.setdefault(c["name"].strip().lower(), c["id"])
        if other != c["id"]:
            raise ConfigError(f"{p}: class name {c['name']!r} is given to ids {other} and {c['id']}; names must differ")
    return table


def default_class_table(ids: Iterable[int]) -> list[dict[str, Any]]:
    """``class N`` names and palette colours for class ids without a class table."""
    return normalise_class_table([{"id": int(i)} for i in sorted(set(int(i) for i in ids))])
