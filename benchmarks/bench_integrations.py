"""What the LangChain and LlamaIndex retrievers cost over ``Index.search`` (issue 16's target:
<= 5% at p50), on SciFact.

    python benchmarks/bench_integrations.py --index /tmp/scifact-plaid [--data ../shared/data/scifact]

``--index`` is a SciFact index (built there first if the directory does not exist:
``colmax index DATA -o INDEX --kind plaid``). One run: every judged query goes through
``Index.search``, ``ColmaxRetriever.invoke`` (LangChain) and ``ColmaxRetriever.retrieve``
(LlamaIndex) with the same k, one right after the other in an order that rotates per query, so
that load on a shared machine hits all three alike; query encoding is inside every timing. It
prints p50 / p99 per path, the ratio of p50s, the median per-query ratio and time added (each
query against its own ``Index.search``), and checks that the three return the same ids in the
same order. Then, for scale, ``ColmaxReranker`` on the retriever's documents (its cost is
encoding them). Needs ``pip install "colmax[langchain,llama-index]"``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import colmax
import numpy as np
from colmax.evaluation import read_qrels, read_queries
from colmax.integrations import langchain, llama_index

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def cpu() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in pairs}  # the last CPU's; all are alike
    name = fields.get("model name", "?")
    flags = fields.get("flags", "").split()
    extras = [f for f in ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    return f"{name}; {', '.join(extras) or 'no AVX-512/AMX'}"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True, help="a SciFact index (built if missing)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=10, help="queries run before timing")
    parser.add_argument("--rerank-queries", type=int, default=30)
    args = parser.parse_args()

    if not args.index.exists():
        cmd = ["colmax", "index", str(args.data), "-o", str(args.index), "--kind", "plaid"]
        print("building:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    index = colmax.Index.open(args.index)
    queries, qrels = read_queries(args.data / "queries.jsonl"), read_qrels(args.data / "qrels.tsv")
    texts = [queries[q] for q in queries if q in qrels]
    print(f"CPU: {cpu()}; {colmax.active_isa()} kernels; Python {sys.version.split()[0]}")
    print(f"{index!r}, kind {index.kind}; {len(texts)} queries, k={args.k}")

    lc = langchain.ColmaxRetriever(index=index, k=args.k)
    li = llama_index.ColmaxRetriever(index, similarity_top_k=args.k)
    paths = {
        "Index.search": lambda q: [h.id for h in index.search(q, args.k)],
        "LangChain invoke": lambda q: [d.id for d in lc.invoke(q)],
        "LlamaIndex retrieve": lambda q: [n.node.node_id for n in li.retrieve(q)],
    }
    names = list(paths)
    for q in texts[: args.warmup]:
        for name in names:
            paths[name](q)

    times: dict[str, list[float]] = {name: [] for name in names}
    for i, q in enumerate(texts):
        ids = {}
        for name in names[i % 3 :] + names[: i % 3]:  # rotate who goes first
            t0 = time.perf_counter()
            ids[name] = paths[name](q)
            times[name].append(time.perf_counter() - t0)
        if not ids[names[0]] == ids[names[1]] == ids[names[2]]:
            raise SystemExit(f"results differ for query {i}: {ids}")

    base = times["Index.search"]
    columns = ("p50 ms", "p99 ms", "p50 ratio", "median ratio", "median extra ms")
    print(f"\n{'path':<20} " + " ".join(f"{c:>{len(c)}}" for c in columns))
    for name in names:
        t = times[name]
        ratio = percentile(t, 50) / percentile(base, 50)
        paired = statistics.median(a / b for a, b in zip(t, base))  # per query, against its own search
        extra = statistics.median(a - b for a, b in zip(t, base)) * 1e3
        print(
            f"{name:<20} {percentile(t, 50) * 1e3:>6.2f} {percentile(t, 99) * 1e3:>6.2f} "
            f"{ratio:>9.3f} {paired:>12.3f} {extra:>15.3f}"
        )
    print("target: p50 ratio <= 1.05 for both retrievers; identical ids and order: checked")

    reranker = langchain.ColmaxReranker(model=index.encoder, top_n=3)
    spent = []
    for q in texts[: args.rerank_queries]:
        docs = lc.invoke(q)
        t0 = time.perf_counter()
        reranker.compress_documents(docs, q)
        spent.append(time.perf_counter() - t0)
    print(
        f"\nColmaxReranker on the {args.k} retrieved documents: p50 {percentile(spent, 50) * 1e3:.1f} ms "
        f"over {len(spent)} queries (it encodes the query and the {args.k} texts)"
    )


if __name__ == "__main__":
    main()
