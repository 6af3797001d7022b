"""`colmax compress INDEX [-o OUT]`: an exact index's plaid form, from its stored vectors."""

from __future__ import annotations

import argparse
import time

from colmax.index.codebook import NBITS
from colmax.index.manifest import STORAGES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compress",
        help="turn an exact index into a compressed (plaid) one, without re-encoding",
        description="Build the plaid form of an exact index from its stored vectors: a codebook "
        "trained on a sample of them, every vector compressed with it; ids, metadata, texts and "
        "the keyword index carry over. Without -o the index is replaced in one commit; with -o a "
        "new index is written and INDEX is left as it is. The original stays whole until the new "
        "form is complete. A plaid index cannot go back to exact (its residuals are lossy).",
    )
    parser.add_argument("index", help="exact index directory")
    parser.add_argument("-o", "--output", default=None, help="write a new index here (new or empty)")
    parser.add_argument(
        "--nbits",
        type=int,
        choices=NBITS,
        default=None,
        help="residual bits per dimension (default 2 up to dim 128, else 4)",
    )
    parser.add_argument("--centroids", type=int, default=None, help="codebook size (default: from corpus)")
    parser.add_argument(
        "--storage", choices=STORAGES, default=None, help="also keep a full-precision copy (default: none)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.index import Index

    t0 = time.perf_counter()
    with Index.open(args.index) as index:
        before = index.info()["size_on_disk"]
        options = {"nbits": args.nbits, "n_centroids": args.centroids, "storage": args.storage}
        with index.compress(args.output, **options) as compressed:
            info = compressed.info()
    seconds = time.perf_counter() - t0
    print(
        f"compressed {info['documents']} documents ({info['tokens']} token vectors) into "
        f"{args.output or args.index} in {seconds:.1f} s: plaid {info['nbits']}-bit, "
        f"{info['centroids']} centroids, {info['bytes_per_token']:g} bytes/token, "
        f"{before / 2**20:.1f} -> {info['size_on_disk'] / 2**20:.1f} MiB on disk"
    )
    return 0
