"""`colmax add-keyword-index INDEX`: add the keyword index to an index that has none, in one commit."""

from __future__ import annotations

import argparse
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "add-keyword-index",
        help="add the keyword index (BM25, for keyword and hybrid search) to an index without one",
        description="Index every stored text of INDEX in an SQLite FTS5 table, in one commit, so that "
        "it can be searched by keyword and hybrid (indexes written by earlier colmax versions, or "
        "created with --no-keyword, have none). Does nothing if the index has one.",
    )
    parser.add_argument("index", help="index directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.index import Index

    with Index.open(args.index) as index:
        if index.info()["keyword_index"]:
            print(f"{args.index} already has a keyword index")
            return 0
        t0 = time.perf_counter()
        index.add_keyword_index()
        seconds = time.perf_counter() - t0
        print(f"added the keyword index of {len(index)} documents to {args.index} in {seconds:.1f} s")
    return 0
