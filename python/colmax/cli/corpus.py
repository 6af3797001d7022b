"""Reading a corpus and adding it to an index a commit at a time: what `colmax index` and
`colmax add` share (their options, the notes on what was skipped, the summary line)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

CHUNK = 20_000  # documents per commit: a killed run keeps every finished chunk


def add_options(parser: argparse.ArgumentParser) -> None:
    """Reading the corpus and cutting long documents, for `colmax index` and `colmax add`."""
    parser.add_argument(
        "--skip-errors",
        action="store_true",
        help="leave out malformed JSONL lines and unreadable files (each one reported) instead of stopping",
    )
    parser.add_argument(
        "--truncate",
        action="store_true",
        help="index only the first passage of a long document (the count is reported) instead of all of "
        "its text as passages",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="documents per encoder batch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def read(args: argparse.Namespace, command: str):
    """The corpus ``args.corpus``, every document left out reported on stderr."""
    from colmax.evaluation.corpus import read_corpus

    corpus = read_corpus(args.corpus, skip_errors=args.skip_errors)
    for note in corpus.skipped:
        print(f"colmax {command}: skipped {note}", file=sys.stderr)
    return corpus


@dataclass
class Added:
    documents: int = 0
    passages: int = 0  # passages the new documents were indexed as
    truncated: int = 0
    seconds: float = 0.0


def add_all(index, corpus, args: argparse.Namespace, *, upsert: bool = False, keep: list[int] | None = None):
    """Add the corpus's documents (those at ``keep``, default all) in commits of CHUNK; a
    truncation warning is counted, not printed (the summary says it)."""
    import warnings

    rows = range(len(corpus)) if keep is None else keep
    done = Added()
    t0 = time.perf_counter()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        with warnings.catch_warnings():
            # the ids carry what truncation cut; other warnings (an index grown past exact
            # search's range) still reach the user
            warnings.filterwarnings(
                "ignore", message=r".* were truncated to their first one", category=UserWarning
            )
            ids = index.add(
                [corpus.texts[i] for i in chunk],
                [corpus.ids[i] for i in chunk],
                [corpus.metadata[i] for i in chunk],
                batch_size=args.batch_size,
                progress=False if args.no_progress else None,
                upsert=upsert,
                truncate=args.truncate,
            )
        done.documents += len(ids)
        done.passages += ids.passages
        done.truncated += len(ids.truncated)
    done.seconds = time.perf_counter() - t0
    return done


def passages_note(done: Added) -> str:
    """How the documents were cut: into passages, or what truncation left out."""
    if done.truncated:
        return f"; {done.truncated} longer than one passage truncated to it (--truncate)"
    return f" as {done.passages} passages" if done.passages > done.documents else ""
