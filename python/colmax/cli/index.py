"""`colmax index CORPUS -o INDEX`: encode a corpus into a new index."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from colmax.index import defaults
from colmax.index.codebook import NBITS
from colmax.index.defaults import AUTO_PLAID_TOKENS, KINDS
from colmax.index.manifest import STORAGES

from . import corpus as corpora


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="index a corpus (JSONL, JSONL.gz, BEIR directory, folder of .txt/.md)",
        description="Encode a corpus and write a new index directory. CORPUS is a JSONL or JSONL.gz "
        "file (one object per line with _id, text and optional title; other fields become "
        "metadata), a BEIR dataset directory (corpus.jsonl[.gz]) or a folder of .txt / .md files "
        "(ids are the relative paths). The indexed text is title + ' ' + text; a JSONL line without "
        "_id gets the first 20 hex digits of the SHA-256 of its content as id. Documents longer than "
        "the model's document length are indexed whole, as overlapping passages.",
    )
    parser.add_argument("corpus", help="corpus file or directory")
    parser.add_argument("-o", "--output", required=True, help="index directory to create (new or empty)")
    parser.add_argument("--model", default=None, help="model directory (default: the packaged model)")
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="auto",
        help="exact: every vector stored, exact search; plaid: compressed, staged search (docs/plaid.md); "
        f"auto (default): exact up to {AUTO_PLAID_TOKENS:,} token vectors (estimated from the corpus), "
        "plaid above",
    )
    parser.add_argument(
        "--storage",
        choices=STORAGES,
        default=None,
        help="precision of stored vectors (exact: default bfloat16 where the CPU has native bfloat16 "
        "dot products, else float16; plaid: an optional full-precision copy, default none)",
    )
    parser.add_argument(
        "--nbits",
        type=int,
        choices=NBITS,
        default=None,
        help="plaid: residual bits per dimension (default 2 up to dim 128, else 4)",
    )
    parser.add_argument(
        "--centroids", type=int, default=None, help="plaid: codebook size (default: from corpus)"
    )
    parser.add_argument(
        "--no-keyword",
        action="store_true",
        help="leave out the keyword index (BM25 over the texts; hybrid search needs it)",
    )
    parser.add_argument(
        "--passage-length",
        type=int,
        default=None,
        help="tokens per passage of a long document, at most the model's document length (the default)",
    )
    parser.add_argument(
        "--passage-stride",
        type=int,
        default=None,
        help="text tokens from one passage's start to the next (default: 3/4 of a passage)",
    )
    corpora.add_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.encoding.encoder import load_encoder
    from colmax.index import Index
    from colmax.index.write import discard, title

    corpus = corpora.read(args, "index")
    output = Path(args.output)
    existed = output.exists()
    t0 = time.perf_counter()
    encoder = load_encoder(args.model)
    n_tokens = defaults.estimate_tokens(
        encoder,
        corpus.texts,
        args.passage_length,
        args.passage_stride,
        truncate=args.truncate,
        titles=[title(m) for m in corpus.metadata],
    )
    knobs = args.nbits is not None or args.centroids is not None
    kind = "plaid" if args.kind == "auto" and knobs else defaults.resolve_kind(args.kind, n_tokens)
    if kind == "exact" and knobs:
        raise SystemExit("colmax index: --nbits and --centroids apply to --kind plaid")
    plaid = {"nbits": args.nbits, "n_centroids": args.centroids} if kind == "plaid" else {}
    index = Index.create(
        output,
        encoder,
        kind=kind,
        storage=args.storage,
        keyword=not args.no_keyword,
        passage_length=args.passage_length,
        passage_stride=args.passage_stride,
        **plaid,
    )
    project(index, n_tokens, sum(map(len, corpus.texts)), args.kind == "auto")
    try:
        done = corpora.add_all(index, corpus, args)
    except BaseException:
        # an interrupted or failed run leaves no half-built index behind
        index.close()
        discard(output, existed)
        raise
    seconds = time.perf_counter() - t0
    info = index.info()
    stored = (
        info["storage"]
        if info["kind"] == "exact"
        else f"plaid {info['nbits']}-bit, {info['centroids']} centroids"
    )
    print(
        f"indexed {info['documents']} documents{corpora.passages_note(done)} ({info['tokens']} token "
        f"vectors, {stored}) into {output} in {seconds:.1f} s ({info['documents'] / seconds:.1f} docs/s), "
        f"{info['size_on_disk'] / 2**20:.1f} MiB on disk"
    )
    return 0


def project(index, n_tokens: int, n_chars: int, auto: bool) -> None:
    """Before encoding: the kind chosen and the index's projected size, with a warning when it
    exceeds the memory available (searches would then read from disk)."""
    info = index.info()
    nbits = info.get("nbits")
    per_token = defaults.bytes_per_token(info["kind"], info["dim"], info["storage"], nbits)
    size = n_tokens * per_token + 2 * n_chars  # vectors, plus texts stored and keyword-indexed
    how = info["storage"] if info["kind"] == "exact" else f"plaid {nbits}-bit"
    limit = defaults.AUTO_PLAID_TOKENS
    why = f" (auto: {'above' if info['kind'] == 'plaid' else 'up to'} {limit:,})" if auto else ""
    print(
        f"about {n_tokens:,} token vectors{why}, {how} at {per_token:g} bytes each: "
        f"about {size / 2**20:,.1f} MiB on disk",
        file=sys.stderr,
    )
    available = defaults.available_memory()
    if available is not None and size > available:
        print(
            f"colmax index: warning: the index (about {size / 2**30:.1f} GiB) exceeds the memory "
            f"available ({available / 2**30:.1f} GiB): searches will read from disk; consider "
            + ("--kind plaid" if info["kind"] == "exact" else "--nbits 2"),
            file=sys.stderr,
        )
