"""Class tables: the classes.json format (id, name, colour), its checks, and the default colours
(by what a class name says, else a qualitative palette)."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable, Mapping, Sequence

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.input_files import check_input_file

__all__ = ["NAME_COLOURS", "PALETTE", "TAB20", "class_descriptions", "default_class_table", "hex_to_rgba",
           "load_class_table", "name_colour", "normalise_class_table", "palette_color"]

#: Tableau 20 (matplotlib's ``tab20``): ten hues, each dark then light.
TAB20: tuple[str, ...] = (
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
    "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
)
#: A qualitative palette for classes or clusters without a colour: :data:`TAB20`, the ten dark
#: colours first, then the ten light ones.
PALETTE: tuple[str, ...] = TAB20[0::2] + TAB20[1::2]


#: Colours by what a class name says (first matching family wins; whole words, plural and
#: "-land"/"-field" forms too: "winter_wheat" is a cereal, "grassland" grass, "seasonal" not
#: sea): family → (name words, shades).
#: A family's shades go to its classes in turn, so two cereals get two yellows.
NAME_COLOURS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("water", ("water", "lake", "river", "sea", "ocean", "reservoir", "pond", "canal"),
     ("#1f78b4", "#4a90d9", "#0b4f8a", "#74b3e8")),
    ("wetland", ("wetland", "marsh", "swamp", "bog", "mangrove"), ("#4fa3a5", "#2e7f82")),
    ("snow", ("snow", "ice", "glacier"), ("#e0f3f8", "#cfe8ef")),
    ("cloud", ("cloud",), ("#f0f0f0",)),
    ("conifer", ("conifer", "coniferous", "evergreen", "pine", "spruce", "fir"), ("#1b5e20", "#2f6b2f")),
    ("forest", ("forest", "broadleaf", "deciduous", "wood", "tree", "plantation"),
     ("#2e7d32", "#388e3c", "#43a047", "#1e5631")),
    ("shrub", ("shrub", "scrub", "heath", "orchard", "vineyard", "olive"), ("#6b8e23", "#8a9a3b", "#556b2f")),
    ("grass", ("grass", "meadow", "pasture", "prairie", "herbaceous", "lawn", "rangeland"),
     ("#9ccc65", "#b5e08a", "#7cb342")),
    ("maize", ("maize", "corn", "sorghum"), ("#f58231", "#e86a10", "#ffa05c")),
    ("sunflower", ("sunflower",), ("#ffb300",)),
    ("rapeseed", ("rapeseed", "rape", "canola", "colza", "mustard"), ("#ffe119", "#f2d600")),
    ("cereal", ("wheat", "barley", "cereal", "rye", "oat", "triticale", "spelt", "grain", "rice"),
     ("#e3b505", "#f4d03f", "#c99a06", "#ffe27a", "#d9a400")),
    ("crop", ("crop", "arable", "cultivated", "agriculture", "agricultural", "farm", "soy", "soybean", "potato",
              "beet", "vegetable", "cotton",
              "legume", "bean", "tobacco", "hop"),
     ("#f0a830", "#e5c07b", "#d98c1f", "#f7c873", "#c9822b", "#ebb35e")),
    ("bare", ("bare", "soil", "sand", "rock", "fallow", "desert", "dune", "quarry", "mine", "gravel"),
     ("#a0785a", "#c2a27c", "#8b5a3c", "#d2b48c")),
    ("urban", ("urban", "built", "city", "town", "artificial", "road", "building", "settlement", "impervious",
               "industrial", "residential"), ("#808080", "#a9a9a9", "#5f5f5f", "#c0c0c0")),
)
_NAME_WORDS = [(fam, re.compile(r"(?:^|[^a-z])(?:" + "|".join(words) + r")(?:s|es|land|lands|field|fields)?(?![a-z])"),
                shades) for fam, words, shades in NAME_COLOURS]


def name_colour(name: str, used: Iterable[str] = ()) -> str | None:
    """A colour saying what the class ``name`` is (water blue, forests greens, grass light
    green, cereals yellows, maize orange, bare soil browns, urban greys: :data:`NAME_COLOURS`),
    the first shade of its family not in ``used``; None when the name says nothing known or
    the family's shades are all used."""
    text = " " + str(name).lower().replace("_", " ").replace("-", " ")
    taken = {str(c).lower() for c in used}
    for _fam, pattern, shades in _NAME_WORDS:
        if pattern.search(text):
            return next((c for c in shades if c not in taken), None)
    return None


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
    """Check a class table and fill in missing names and colours (a colour by what the name
    says, :func:`name_colour`, else the :data:`PALETTE` colour of its position).

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
    used = {_rgb_hex(hex_to_rgba(e["color"])) for e in class_table if isinstance(e, Mapping) and e.get("color")}
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
        color = entry.get("color") or (name_colour(name, used) if entry.get("name") else None) or palette_color(i)
        used.add(_rgb_hex(hex_to_rgba(color)))
        out.append({"id": cid, "name": str(name), "color": _rgb_hex(hex_to_rgba(color))})
    return out


def load_class_table(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a ``classes.json``: a list of ``{"id": int, "name": str, "color": "#rrggbb"}`` (an
    optional ``"description"`` is allowed: :func:`class_descriptions`).

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
        unknown = [k for k in c if k not in ("id", "name", "color", "description")]
        if unknown:
            raise ConfigError(f"{p}: class {i} has unknown key(s) {', '.join(map(repr, unknown))} "
                              "(allowed: id, name, color, description)")
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


def class_descriptions(path: str | os.PathLike) -> dict[str, str]:
    """Class name → ``description`` of the classes of a classes.json that have one (free text, e.g.
    ``"sown in autumn, green in spring, harvested in July"``; the text queries caption with it).

    Raises: as :func:`load_class_table`.
    """
    load_class_table(path)  # the checks
    data = json.loads(check_input_file(path, "class table").read_text(encoding="utf-8"))
    data = data["classes"] if isinstance(data, Mapping) else data
    return {str(c.get("name") or f"class {c['id']}"): str(c["description"]).strip() for c in data
            if isinstance(c.get("description"), str) and c["description"].strip()}
