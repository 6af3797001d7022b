"""`colmax add INDEX CORPUS`: add a corpus's new documents to an index (or replace, --upsert)."""

from __future__ import annotations

import argparse

from . import corpus as corpora


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "add",
        help="add a corpus's documents to an existing index",
        description="Read CORPUS as `colmax index` does and add its documents to INDEX, a commit per "
        f"{corpora.CHUNK:,} documents. Documents whose ids the index holds already are left out and "
        "counted (with ids from content, as JSONL lines without _id get, that makes adding a grown "
        "file again add only what is new); --upsert replaces them instead.",
    )
    parser.add_argument("index", help="index directory")
    parser.add_argument("corpus", help="corpus file or directory (as for colmax index)")
    parser.add_argument("--upsert", action="store_true", help="replace the documents whose ids exist")
    parser.add_argument("--model", default=None, help="model directory, if the index's has moved")
    corpora.add_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.index import Index

    corpus = corpora.read(args, "add")
    with Index.open(args.index, model=args.model) as index:
        present = {i for i, id_ in enumerate(corpus.ids) if id_ in index}
        keep = (
            list(range(len(corpus))) if args.upsert else [i for i in range(len(corpus)) if i not in present]
        )
        done = corpora.add_all(index, corpus, args, upsert=args.upsert, keep=keep)
        total = len(index)
    verb = "added or replaced" if args.upsert else "added"
    line = f"{verb} {done.documents} documents{corpora.passages_note(done)} to {args.index}"
    line += f" in {done.seconds:.1f} s"
    if present and args.upsert:
        line += f" ({len(present)} replaced)"
    elif present:
        line += f"; {len(present)} already there, left out (--upsert replaces them)"
    print(f"{line}; {total} documents now")
    return 0
