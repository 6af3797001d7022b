"""What the index path costs over the raw encoder + core, on SciFact (issue 4's targets).

    python benchmarks/bench_index.py [--data ../shared/data/scifact] [--subset 1000] [--threads N]

One run prints, per storage precision: query latency through ``Index.search`` (encoding
included) against query encoding + the core's ``maxsim_topk`` over the same vectors, measured
interleaved on the same queries; ``Index.open`` time and resident-memory growth; nDCG@10 through
``colmax.evaluation.evaluate`` against a direct ranking of the encoder's float32 vectors. Indexing
throughput compares ``Index.add`` with ``encode_documents`` on the first ``--subset`` documents.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import colmax
import numpy as np
from colmax.evaluation import evaluate, ndcg, read_qrels, read_queries
from colmax.evaluation.corpus import read_corpus

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--subset", type=int, default=1000, help="documents for the indexing-throughput check"
    )
    parser.add_argument(
        "--index-reps", type=int, default=3, help="repetitions of the indexing check (best kept)"
    )
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    corpus = read_corpus(args.data)
    queries, qrels = read_queries(args.data / "queries.jsonl"), read_qrels(args.data / "qrels.tsv")
    judged = [q for q in queries if q in qrels]
    encoder = colmax.Encoder(threads=args.threads)
    print(f"{encoder}; {len(corpus)} documents, {len(judged)} queries; ISA {colmax.active_isa()}")

    # indexing throughput: the same documents through encode_documents and through Index.add,
    # interleaved and best-of-N so that drift in machine speed hits both sides alike
    sub = slice(0, args.subset)
    t_encode = t_add = float("inf")
    for _ in range(args.index_reps):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            encoder.encode_documents(corpus.texts[sub])
            t_encode = min(t_encode, time.perf_counter() - t0)
            index = colmax.Index.create(Path(tmp) / "ix", encoder, storage="float32")
            t0 = time.perf_counter()
            index.add(corpus.texts[sub], corpus.ids[sub])
            t_add = min(t_add, time.perf_counter() - t0)
            index.close()
    n_sub = len(corpus.texts[sub])
    print(
        f"\nindexing {n_sub} docs: encode_documents {n_sub / t_encode:.1f} docs/s, "
        f"Index.add {n_sub / t_add:.1f} docs/s, ratio add/encode time {t_add / t_encode:.3f} (target <= 1.10)"
    )

    t0 = time.perf_counter()
    docs = encoder.encode_documents(corpus.texts)
    print(
        f"encoded all {len(docs)} documents ({docs.tokens.shape[0]} tokens) "
        f"in {time.perf_counter() - t0:.1f} s"
    )

    # the encoder's own evaluation: float32 vectors ranked by the core directly
    qtexts = [queries[q] for q in judged]
    qmats = encoder.encode_queries(qtexts)
    direct = 0.0
    for i, qid in enumerate(judged):
        top, _ = colmax.maxsim_topk(qmats[i], docs.tokens, docs.offsets, 10, threads=args.threads)
        direct += ndcg([corpus.ids[j] for j in top.tolist()], qrels[qid])
    direct /= len(judged)

    print(
        f"\n{'storage':<9} {'search p50':>10} {'p99':>7} {'enc+core p50':>12} {'p99':>7} {'ratio':>6} "
        f"{'open ms':>8} {'RSS +MiB':>8} {'size MiB':>8} {'nDCG@10':>8} {'direct':>7}"
    )
    for storage in ("float32", "float16", "bfloat16"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ix"
            writer = colmax.Index.create(path, encoder, storage=storage)
            writer.add_embeddings(docs, corpus.ids)
            writer.close()
            opens = []
            for _ in range(5):
                before = rss_bytes()
                t0 = time.perf_counter()
                index = colmax.Index.open(path, model=encoder, threads=args.threads)
                opens.append(time.perf_counter() - t0)
                grown = rss_bytes() - before
                index.close()
            index = colmax.Index.open(path, model=encoder, threads=args.threads)
            seg = index._snapshot.segments[0]
            tokens, offsets = np.ascontiguousarray(seg.tokens), np.ascontiguousarray(seg.offsets)
            index.search(qtexts[0], k=10)
            path_ms, base_ms = [], []
            for text in qtexts:  # interleaved, so machine noise hits both sides alike
                t0 = time.perf_counter()
                index.search(text, k=10)
                t1 = time.perf_counter()
                q = encoder.encode_queries([text])[0]
                colmax.maxsim_topk(q, tokens, offsets, 10, threads=args.threads)
                t2 = time.perf_counter()
                path_ms.append((t1 - t0) * 1e3)
                base_ms.append((t2 - t1) * 1e3)
            quality = evaluate(index, queries, qrels)["ndcg@10"]
            p = np.percentile(path_ms, [50, 99])
            b = np.percentile(base_ms, [50, 99])
            print(
                f"{storage:<9} {p[0]:>10.1f} {p[1]:>7.1f} {b[0]:>12.1f} {b[1]:>7.1f} {p[0] / b[0]:>6.3f} "
                f"{np.median(opens) * 1e3:>8.1f} {grown / 2**20:>8.1f} {dir_size(path) / 2**20:>8.1f} "
                f"{quality:>8.4f} {direct:>7.4f}",
                flush=True,
            )
            index.close()
    print("\ntargets: ratio <= 1.15; open <= 50 ms; RSS growth < 10% of size; nDCG within 0.003 of direct")


if __name__ == "__main__":
    main()
