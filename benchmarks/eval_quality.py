"""Retrieval quality of an encoder: nDCG@10 on BEIR-format data sets, exhaustive MaxSim.

    python benchmarks/eval_quality.py                      # default model, SciFact + Cranfield
    python benchmarks/eval_quality.py --model DIR --fp32   # another model directory, float32

Data: ../shared/data/{scifact,cranfield} (corpus.jsonl[.gz], queries.jsonl, qrels.tsv), read in
place. Documents are title + text; gains are the qrels grades (linear, as pytrec_eval / BEIR).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from pathlib import Path

import colmax
import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_beir(directory: Path):
    corpus_path = directory / "corpus.jsonl"
    opener = open if corpus_path.exists() else gzip.open
    if not corpus_path.exists():
        corpus_path = directory / "corpus.jsonl.gz"
    with opener(corpus_path, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    with open(directory / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line) for line in f]
    qrels: dict[str, dict[str, int]] = {}
    with open(directory / "qrels.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, score = line.split()
            qrels.setdefault(qid, {})[did] = int(score)
    queries = [q for q in queries if q["_id"] in qrels]
    return docs, queries, qrels


def ndcg_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def scores_of(query: np.ndarray, docs: colmax.Ragged) -> np.ndarray:
    if hasattr(colmax, "maxsim"):
        return colmax.maxsim(np.ascontiguousarray(query), docs.tokens, docs.offsets)
    # NumPy reference while the core is unavailable: max over each document's rows, then sum
    sim = docs.tokens @ query.T
    return np.maximum.reduceat(sim, docs.offsets[:-1], axis=0).sum(axis=1)


def evaluate(encoder: colmax.Encoder, name: str) -> tuple[float, float, float]:
    docs, queries, qrels = load_beir(DATA / name)
    texts = [(d.get("title", "") + " " + d["text"]).strip() for d in docs]
    ids = [d["_id"] for d in docs]
    t0 = time.perf_counter()
    encoded = encoder.encode_documents(texts, progress=True)
    doc_seconds = time.perf_counter() - t0
    q = encoder.encode_queries([x["text"] for x in queries])
    total = 0.0
    for i, query in enumerate(queries):
        top = np.argsort(-scores_of(q[i], encoded), kind="stable")[:10]
        total += ndcg_at_10([ids[j] for j in top], qrels[query["_id"]])
    return total / len(queries), len(docs) / doc_seconds, encoded.tokens.shape[0] / len(docs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model directory (default: the packaged model)")
    parser.add_argument("--fp32", action="store_true", help="use model.onnx instead of model_int8.onnx")
    parser.add_argument("--datasets", nargs="+", default=["scifact", "cranfield"])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    encoder = colmax.Encoder(args.model, int8=False if args.fp32 else None, threads=args.threads)
    print(encoder)
    print(f"scoring: {'colmax.maxsim' if hasattr(colmax, 'maxsim') else 'NumPy reference'}")
    print(f"{'dataset':<10} {'nDCG@10':>8} {'docs/s':>8} {'vectors/doc':>12}")
    for name in args.datasets:
        ndcg, rate, per_doc = evaluate(encoder, name)
        print(f"{name:<10} {ndcg:>8.4f} {rate:>8.1f} {per_doc:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
