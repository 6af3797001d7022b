"""Storage precision on real vectors: does float16 / bfloat16 / int8 storage keep float32's ranking?

Encodes a BEIR dataset with the default model (vectors cached under --cache), scores every
query exactly with the documents stored as float32, float16, bfloat16 and int8 (a float32 scale
per token; the kernels quantize the query too), and prints per precision: bytes per token, the
share of float32's top-10 that it keeps, nDCG@10 and its difference from float32, and the median
time of one query's exact top-10 over the whole corpus.

    python benchmarks/bench_precision.py [--data ../shared/data/scifact] [--cache /tmp/colmax-bench]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import colmax
import numpy as np
from colmax.evaluation import ndcg, read_qrels, read_queries
from colmax.evaluation.corpus import read_corpus


def encoded(data: Path, cache: Path):
    path = cache / f"{data.name}-default-model.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return (
            colmax.Ragged(z["doc_tokens"], z["doc_offsets"]),
            list(z["doc_ids"]),
            colmax.Ragged(z["query_tokens"], z["query_offsets"]),
            list(z["query_ids"]),
        )
    corpus = read_corpus(data)
    queries = read_queries(data / "queries.jsonl")
    qrels = read_qrels(data / "qrels.tsv")
    query_ids = [q for q in queries if q in qrels]
    encoder = colmax.Encoder()
    docs = encoder.encode_documents(corpus.texts, progress=True)
    qs = encoder.encode_queries([queries[q] for q in query_ids])
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        doc_tokens=docs.tokens,
        doc_offsets=docs.offsets,
        doc_ids=np.array(corpus.ids),
        query_tokens=qs.tokens,
        query_offsets=qs.offsets,
        query_ids=np.array(query_ids),
    )
    return docs, corpus.ids, qs, query_ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "data" / "scifact")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/colmax-bench"))
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    docs, doc_ids, queries, query_ids = encoded(args.data, args.cache)
    qrels = read_qrels(args.data / "qrels.tsv")
    values, scales = colmax.quantize_int8(docs.tokens)
    stores = {  # name: (tokens, scales or None, bytes per token)
        "float32": (docs.tokens, None, 4 * docs.dim),
        "float16": (docs.tokens.astype(np.float16), None, 2 * docs.dim),
        "bfloat16": (colmax.to_bfloat16(docs.tokens), None, 2 * docs.dim),
        "int8": (values, scales, docs.dim + 4),
    }
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        "?",
    )
    print(
        f"{args.data.name}: {len(docs):,} documents, {docs.tokens.shape[0]:,} tokens x {docs.dim}, "
        f"{len(queries)} queries; ISA {colmax.active_isa()} on {cpu}\n"
    )
    print("| storage | bytes/token | top-10 kept vs float32 | nDCG@10 | vs float32 | median ms/query |")
    print("|---|---|---|---|---|---|")
    reference = base = None
    for name, (tokens, row_scales, width) in stores.items():
        tops, times = [], []
        for q in queries:
            start = time.perf_counter()
            ids, _ = colmax.maxsim_topk(q, tokens, docs.offsets, args.k, doc_scales=row_scales)
            times.append(time.perf_counter() - start)
            tops.append(ids)
        if reference is None:
            reference = tops
        kept = np.mean([len(set(a.tolist()) & set(b.tolist())) / args.k for a, b in zip(tops, reference)])
        quality = np.mean([ndcg([doc_ids[i] for i in top], qrels[qid]) for top, qid in zip(tops, query_ids)])
        base = quality if base is None else base
        print(
            f"| {name} | {width} | {100 * kept:.2f}% | {quality:.4f} | {quality - base:+.4f} "
            f"| {1000 * np.median(times):.1f} |"
        )


if __name__ == "__main__":
    main()
