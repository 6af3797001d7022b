"""End-to-end search throughput with text queries (encoding included), alone and concurrent.

    python benchmarks/bench_throughput.py [--data ../shared/data] [--baseline OTHER_PYTHON]
                                          [--indexes plaid,plaid-int8,exact] [--rounds 2]

Builds SciFact indexes with the default model from the encoded vectors bench_scale.py caches:
"plaid" (4-bit, the default compressed index), "plaid-int8" (the same with an int8 copy for the
last stage), "exact" (float32). For each, in a fresh process: single-stream queries per second
over SciFact's judged query texts with p50 / p99 latency, the p50 of the search alone (the same
queries as matrices, encoded beforehand), then queries per second with 1, 2 and 4 Python threads
calling search() at once, and with search_batch() in batches of 32.

``--baseline`` names the Python of another colmax installation (e.g. a venv with the previous
commit): its workers run the same measurements on the same index files, alternating with this
installation's round by round, and the ratio of their medians is printed. Indexes whose format
the baseline cannot read (int8 storage) are measured on this installation only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
INDEXES = {
    "plaid": {"kind": "plaid", "nbits": 4},
    "plaid-int8": {"kind": "plaid", "nbits": 4, "storage": "int8"},
    "exact": {"kind": "exact", "storage": "float32"},
}
CONCURRENCY = (1, 2, 4)
BATCH = 32


def query_texts(data: Path) -> list[str]:
    from colmax.evaluation import read_qrels, read_queries

    queries, qrels = read_queries(data / "queries.jsonl"), read_qrels(data / "qrels.tsv")
    return [queries[q] for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]


def build(name: str, data: Path, root: Path) -> Path:
    """The index `name`, built once from the cached SciFact vectors (with the default model)."""
    import colmax
    from bench_scale import encoded

    path = root / f"throughput-{name}"
    if (path / "colmax-index.json").exists():
        return path
    encoder = colmax.Encoder()
    ids, docs, _, _, _ = encoded("scifact", data / "scifact", encoder)
    index = colmax.Index.create(path, **INDEXES[name])
    index.add_embeddings(docs, ids)
    index.close()
    return path


def worker(path: str, texts: list[str]) -> dict:
    """Every measurement on one index, in this process."""
    import colmax

    index = colmax.Index.open(path)
    for t in texts[:20]:  # warm up: the model, the pages of the index
        index.search(t, k=10)
    times = []
    start = time.perf_counter()
    for t in texts:
        t0 = time.perf_counter()
        index.search(t, k=10)
        times.append(time.perf_counter() - t0)
    out = {
        "version": colmax.__version__,
        "isa": colmax.active_isa(),
        "single_qps": len(texts) / (time.perf_counter() - start),
        "p50_ms": 1000 * float(np.median(times)),
        "p99_ms": 1000 * float(np.percentile(times, 99)),
    }
    # the search alone: the same queries as matrices, encoded beforehand
    matrices = [np.ascontiguousarray(m) for m in index.encoder.encode_queries(texts)]
    times = []
    for m in matrices:
        t0 = time.perf_counter()
        index.search(m, k=10)
        times.append(time.perf_counter() - t0)
    out["matrix_p50_ms"] = 1000 * float(np.median(times))
    for n in CONCURRENCY:
        start = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda t: index.search(t, k=10), texts))
        out[f"concurrent_{n}_qps"] = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        index.search_batch(texts[i : i + BATCH], k=10)
    out["batch_qps"] = len(texts) / (time.perf_counter() - start)
    return out


def run(python: str, path: Path, data: Path, queries: int) -> dict:
    cmd = [python, __file__, "--worker", str(path), "--data", str(data), "--queries", str(queries)]
    # the baseline must import its own colmax, not this checkout's benchmarks' neighbours
    result = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--baseline", help="python of another colmax installation to compare with")
    parser.add_argument("--indexes", default="plaid,plaid-int8,exact")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", type=int, default=300, help="query texts per measurement")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where indexes are kept (default: the cache)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    texts = query_texts(args.data / "scifact")[: args.queries]
    if args.worker:
        print(json.dumps(worker(args.worker, texts)))
        return

    from bench_scale import cache_dir, cpu_name

    root = args.workdir or cache_dir()
    names = [n for n in args.indexes.split(",") if n]
    print(f"{cpu_name()}, {os.cpu_count()} CPUs; {len(texts)} SciFact query texts, k=10, default model")
    sides = [("this", sys.executable)] + ([("baseline", args.baseline)] if args.baseline else [])
    results: dict = {}
    for name in names:
        path = build(name, args.data, root)
        for r in range(args.rounds):
            for side, python in sides:
                if side == "baseline" and "storage" in INDEXES[name]:
                    continue  # int8 storage is newer than a baseline may read
                got = run(python, path, args.data, len(texts))
                results.setdefault((name, side), []).append(got)
                print(
                    f"  round {r + 1} {name} {side} ({got['version']}, {got['isa']}): {json.dumps(got)}",
                    flush=True,
                )
    keys = ["single_qps", "p50_ms", "p99_ms", "matrix_p50_ms"]
    keys += [f"concurrent_{n}_qps" for n in CONCURRENCY] + ["batch_qps"]
    print("\nmedians over rounds\n")
    print("| index | colmax | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for (name, side), rows in results.items():
        cells = [f"{np.median([row[k] for row in rows]):.1f}" for k in keys]
        print(f"| {name} | {side} | " + " | ".join(cells) + " |")
    for name in names:
        if (name, "baseline") in results:
            now = np.median([row["single_qps"] for row in results[(name, "this")]])
            before = np.median([row["single_qps"] for row in results[(name, "baseline")]])
            print(
                f"\n{name}: single-stream text queries/s {now:.1f} against {before:.1f}: {now / before:.2f}x"
            )
            now = np.median([row["matrix_p50_ms"] for row in results[(name, "this")]])
            before = np.median([row["matrix_p50_ms"] for row in results[(name, "baseline")]])
            print(f"{name}: p50 with query matrices {now:.2f} ms against {before:.2f}: {now / before:.2f}x")


if __name__ == "__main__":
    main()
