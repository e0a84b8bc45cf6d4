"""``python -m training <command> ...`` — dispatch to the training commands.

Commands:
    series   Train and evaluate the PIMC pixel-series classifier on UCR-layout tables.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"series": "training.series"}
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in commands:
        print(f"error: unknown command {cmd!r} (choose from {', '.join(commands)})", file=sys.stderr)
        return 2
    import importlib

    return int(importlib.import_module(commands[cmd]).main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
