"""The `colmax` command line: the parser and the error policy; one module per subcommand beside it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from colmax._version import __version__

from . import add, add_keyword_index, compact, compress, convert, delete, demo, info, search, serve, verify
from . import eval as eval_
from . import index as index_

# Each module exposes register(subparsers), which adds its parser and sets `func`.
COMMANDS = [
    info,
    convert,
    index_,
    add,
    delete,
    compact,
    compress,
    verify,
    add_keyword_index,
    search,
    eval_,
    demo,
    serve,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colmax", description="Late-interaction (ColBERT-style) retrieval on CPUs."
    )
    parser.add_argument("--version", action="version", version=f"colmax {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError, KeyError) as error:
        print(f"colmax {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
