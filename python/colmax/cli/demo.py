"""`colmax demo`: index the packaged sample corpus and show how late interaction scores a query."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "demo_corpus.jsonl"
QUESTION = "What is the capital of France?"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="index a small sample corpus and explain a query's ranking",
        description=f"Index {len(SAMPLE.read_text().splitlines())} sample passages shipped with colmax, "
        "ask a question, and print the hybrid ranking (MaxSim and BM25, fused) with, for the top "
        "documents, each query token's best matching document token and similarity (their sum is "
        "the MaxSim score) and the query's words the document holds (what BM25 counts).",
    )
    parser.add_argument("--query", default=QUESTION, help=f"the question (default: {QUESTION!r})")
    parser.add_argument("-k", type=int, default=5, help="documents to rank (default 5)")
    parser.add_argument("--explain", type=int, default=2, metavar="N", help="explain the top N (default 2)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.evaluation.corpus import read_jsonl
    from colmax.index import Index

    corpus = read_jsonl(SAMPLE)
    with tempfile.TemporaryDirectory(prefix="colmax-demo-") as tmp:
        with Index.create(Path(tmp) / "index") as index:
            index.add(corpus.texts, corpus.ids, corpus.metadata)
            print(f"indexed {len(index)} sample passages with {index.encoder.name}")
            print(f"query: {args.query!r}\n")
            hits = index.search(args.query, k=args.k)
            width = max(len(h.id) for h in hits)
            print(f"    {'hybrid':>8}  {'maxsim':>7}  {'bm25':>6}")
            for rank, h in enumerate(hits, 1):
                sides = f"{h.semantic_score:7.4f}  {h.keyword_score or 0:6.3f}"
                print(f"{rank:>2}  {h.score:8.4f}  {sides}  {h.id:<{width}}  {h.text}")
            if args.query == QUESTION and "capital-germany" not in [h.id for h in hits]:
                ranking = index.search(args.query, k=len(index))
                rank = [h.id for h in ranking].index("capital-germany")
                berlin = ranking[rank]
                print(f"    ... {berlin.id} ({berlin.text!r}) is #{rank + 1} with {berlin.score:.4f}")
            for h in hits[: max(args.explain, 0)]:
                ex = index.explain(args.query, h.id)
                best = f"each query token's best match in {h.text!r}"
                print(f"\nwhy {h.id!r} has MaxSim {h.semantic_score:.4f}: {best}")
                tokens = ex.query_tokens or [f"q{i}" for i in range(len(ex.similarity))]
                for i, (tok, sim) in enumerate(zip(tokens, ex.similarity.tolist())):
                    match = ex.doc_tokens[i] if ex.doc_tokens else f"token {int(ex.doc_token[i])}"
                    print(f"  {tok:>12} -> {match:<12} {sim:7.4f}")
                print(f"  {'sum':>12}    {'':<12} {ex.score:7.4f}")
                words = ", ".join(ex.keyword_terms or []) or "none"
                print(f"  and BM25 {h.keyword_score or 0:.3f} from the query's words it holds: {words}")
    return 0
