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
    from colmax import _core
    from colmax._version import __version__

    print(f"colmax {__version__}")
    print(f"python {platform.python_version()} on {platform.machine()}, numpy {np.__version__}")
    print(f"compiled ISAs:  {', '.join(_core.compiled_isas())}")
    print(f"supported ISAs: {', '.join(_core.supported_isas())}")
    print(f"active ISA:     {_core.active_isa()}")
    print(f"threads:        {_core.default_threads()}")
    if args.index:
        print_info(args.index)
    return 0


def print_info(path: str) -> None:
    """The index part of `colmax info INDEX`."""
    from colmax.index import Index

    with Index.open(path) as index:
        info = index.info()
    print(f"index:          {info['path']} (format {info['format_version']}, colmax {info['created_with']})")
    model = info["model"] + (f" ({info['model_path']})" if info["model_path"] else "")
    print(f"model:          {model}")
    print(f"documents:      {info['documents']} ({info['deleted']} deleted, {info['segments']} segments)")
    copy = info["storage"] or "no full-precision copy"
    print(f"tokens:         {info['tokens']} x {info['dim']} dims, {copy}")
    if info["kind"] == "plaid":
        print(
            f"plaid:          {info['centroids']} centroids, {info['nbits']} bits per dimension, "
            f"codebook trained on {info['codebook_trained_tokens']} tokens"
        )
    print(f"bytes/token:    {info['bytes_per_token'] or 0:g}")
    if info["keyword_index"]:
        print("keyword index:  yes (SQLite FTS5, BM25; searches default to hybrid)")
    else:
        print("keyword index:  no (semantic search only; add it with: colmax add-keyword-index INDEX)")
    print(f"size on disk:   {info['size_on_disk'] / 2**20:.1f} MiB")
