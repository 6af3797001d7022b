"""`colmax compact INDEX`: rewrite the index without its deleted documents, in one commit."""

from __future__ import annotations

import argparse
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compact",
        help="rewrite an index without its deleted documents",
        description="Deletes and updates leave the old vectors on disk until a compaction rewrites the "
        "index as one segment and a fresh store, in one commit. Readers keep working meanwhile.",
    )
    parser.add_argument("index", help="index directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.index import Index

    with Index.open(args.index) as index:
        before = index.info()
        t0 = time.perf_counter()
        index.compact()
        seconds = time.perf_counter() - t0
        after = index.info()
    mib = 2**20
    print(
        f"compacted {args.index} in {seconds:.1f} s: {before['deleted']} deleted passages removed, "
        f"{before['segments']} segments into {after['segments']}, "
        f"{before['size_on_disk'] / mib:.1f} MiB -> {after['size_on_disk'] / mib:.1f} MiB"
    )
    return 0
