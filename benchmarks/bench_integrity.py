"""What integrity and freshness cost on SciFact (issue 18's targets): `colmax verify`'s read rate,
the price of ``auto_reload`` per search, and indexing throughput per token with long documents
split into passages against truncating them.

    python benchmarks/bench_integrity.py [--data ../shared/data/scifact] [--index DIR]
                                         [--subset 400] [--queries N] [--rounds 3] [--threads N]

``--index`` reuses a float32 exact index of the corpus (``colmax index DATA -o DIR``); without it
one is built in a temporary directory first. Verification: ``Index.verify()`` (every segment file
hashed, the store checked) ``--rounds`` times with a warm page cache, GB/s over the bytes hashed.
Auto-reload: the same text queries through two readers of the index, ``auto_reload=True`` and
``False``, interleaved per query, ``--rounds`` passes; the ratio of their p50 latencies (query
encoding included), and the freshness check alone (``Index._read``, timed in a loop) as a share
of the p50, which machine noise does not blur. Splitting: ``Index.add`` of the first
``--subset`` documents with passages (the default) and with ``truncate=True`` (what colmax did
before passages), interleaved, best of ``--rounds``; the ratio of their token vectors per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import colmax
import numpy as np
from colmax.evaluation import read_queries
from colmax.evaluation.corpus import read_corpus

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def build(path: Path, corpus, encoder) -> None:
    t0 = time.perf_counter()
    index = colmax.Index.create(path, encoder, kind="exact", storage="float32")
    index.add(corpus.texts, corpus.ids, corpus.metadata, progress=False)
    info = index.info()
    index.close()
    print(
        f"built {path}: {info['documents']} documents, {info['tokens']} token vectors "
        f"in {time.perf_counter() - t0:.0f} s"
    )


def bench_verify(path: Path, rounds: int) -> None:
    index = colmax.Index.open(path, verify=False)
    index.warm()
    rates = []
    for _ in range(rounds):
        report = index.verify()
        rates.append(report["bytes"] / report["seconds"] / 1e9)
        print(
            f"  verify: {report['files']} files, {report['bytes'] / 2**20:.0f} MiB in "
            f"{report['seconds']:.3f} s = {rates[-1]:.2f} GB/s"
        )
    index.close()
    print(f"verify: median {np.median(rates):.2f} GB/s, best {max(rates):.2f} GB/s (target >= 1 GB/s)")


def bench_auto_reload(path: Path, encoder, queries: list[str], rounds: int, threads) -> None:
    on = colmax.Index.open(path, model=encoder, threads=threads, auto_reload=True, verify=False)
    off = colmax.Index.open(path, model=encoder, threads=threads, auto_reload=False, verify=False)
    on.search(queries[0], k=10)
    off.search(queries[0], k=10)
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for i, text in enumerate(queries):
            # alternate which reader goes first, so that neither always meets a warmer cache
            order = (on, off) if (i + r) % 2 == 0 else (off, on)
            for reader in order:
                t0 = time.perf_counter()
                reader.search(text, k=10)
                times[reader is on].append(time.perf_counter() - t0)
    p_on, p_off = np.median(times[True]) * 1e3, np.median(times[False]) * 1e3
    # the check itself, alone: what auto_reload adds to every read (the manifest's bytes compared)
    checks = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(2000):
            on._read()
        checks.append((time.perf_counter() - t0) / 2000 * 1e3)
    check = float(np.median(checks))
    print(
        f"auto_reload: search p50 {p_on:.2f} ms on, {p_off:.2f} ms off ({len(times[True])} searches "
        f"each): ratio {p_on / p_off:.4f}; the check alone {check * 1e3:.1f} us = {check / p_off:.5f} "
        "of the p50 (target <= 0.02)"
    )
    on.close()
    off.close()


def bench_splitting(corpus, encoder, subset: int, rounds: int) -> None:
    texts, ids, metas = corpus.texts[:subset], corpus.ids[:subset], corpus.metadata[:subset]
    best: dict[bool, float] = {True: 0.0, False: 0.0}  # tokens per second, truncate -> best
    tokens: dict[bool, int] = {}
    for r in range(rounds):
        for truncate in (r % 2 == 0, r % 2 != 0):
            with tempfile.TemporaryDirectory() as tmp:
                index = colmax.Index.create(Path(tmp) / "ix", encoder, storage="float32")
                t0 = time.perf_counter()
                added = index.add(texts, ids, metas, truncate=truncate, progress=False)  # titles too
                seconds = time.perf_counter() - t0
                tokens[truncate] = index.info()["tokens"]
                best[truncate] = max(best[truncate], tokens[truncate] / seconds)
                if truncate:
                    cut = len(added.truncated)
                index.close()
    print(
        f"indexing the first {len(texts)} documents: passages {tokens[False]} token vectors at "
        f"{best[False]:.0f}/s, truncated ({cut} documents cut) {tokens[True]} at {best[True]:.0f}/s: "
        f"ratio per token {best[False] / best[True]:.3f} (target >= 0.90)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--index", type=Path, default=None, help="a float32 exact index of --data to reuse")
    parser.add_argument("--subset", type=int, default=400, help="documents for the splitting check")
    parser.add_argument("--queries", type=int, default=None, help="the first N queries only (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    corpus = read_corpus(args.data)
    queries = list(read_queries(args.data / "queries.jsonl").values())[: args.queries]
    encoder = colmax.Encoder(threads=args.threads)
    print(f"{encoder}; {len(corpus)} documents, {len(queries)} queries; ISA {colmax.active_isa()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.index
        if path is None:
            path = Path(tmp) / "ix"
            build(path, corpus, encoder)
        bench_verify(path, args.rounds)
        bench_auto_reload(path, encoder, queries, args.rounds, args.threads)
    bench_splitting(corpus, encoder, args.subset, args.rounds)


if __name__ == "__main__":
    main()
