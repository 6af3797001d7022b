"""`colmax info`: version, instruction sets and threads, so a bug report starts from facts."""

from __future__ import annotations

import argparse
import platform

import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="print version, instruction sets and threads")
    parser.add_argument("index", nargs="?", help="also describe this index directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import colmax
    from colmax import _core

    print(f"colmax {colmax.__version__}")
    print(f"python {platform.python_version()} on {platform.machine()}, numpy {np.__version__}")
    print(f"compiled ISAs:  {', '.join(colmax.compiled_isas())}")
    print(f"supported ISAs: {', '.join(colmax.supported_isas())}")
    print(f"active ISA:     {colmax.active_isa()}")
    print(f"threads:        {_core.default_threads()}")
    if args.index:
        from colmax.commands.index import print_info

        print_info(args.index)
    return 0
