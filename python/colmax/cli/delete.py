"""`colmax delete INDEX ID... | --ids-file F`: delete documents (every passage of each) in one commit."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "delete",
        help="delete documents by id",
        description="Delete the documents with the given ids from INDEX in one commit. An unknown id is "
        "an error and nothing is deleted. `colmax compact INDEX` reclaims their space.",
    )
    parser.add_argument("index", help="index directory")
    parser.add_argument("ids", nargs="*", metavar="ID", help="ids of the documents to delete")
    parser.add_argument("--ids-file", default=None, help="a file of ids, one a line (blank lines ignored)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.index import Index

    ids = list(args.ids)
    if args.ids_file:
        text = Path(args.ids_file).read_text(encoding="utf-8-sig")
        ids.extend(line.strip() for line in text.splitlines() if line.strip())
    if not ids:
        raise ValueError("no ids to delete: name them, or pass --ids-file FILE")
    with Index.open(args.index) as index:
        index.delete(ids)
        print(f"deleted {len(set(ids))} documents from {args.index}; {len(index)} documents now")
    return 0
