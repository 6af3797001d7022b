"""Hybrid search's targets (issue 14) in one run, each printed as a ratio or a difference against
a baseline measured alongside (or published, for BM25).

    python benchmarks/bench_hybrid.py [--data ../shared/data] [--work DIR] [--queries N] [--subset N]

1. Quality: nDCG@10 and Recall@100 of semantic, keyword and hybrid search through
   ``colmax.evaluation.evaluate`` (what ``colmax eval`` runs: one query at a time, its text
   encoded), SciFact and Cranfield, exact float32 indexes, next to the BM25 figures of
   ``SOURCE.md`` (bm25s with k1 1.2, b 0.75 as FTS5's bm25() has them, and k1 0.9, b 0.4).
2. Latency: semantic, hybrid and keyword search of the same texts, interleaved by blocks of
   ``BLOCK`` texts (each mode searches a block, their order rotating from block to block, so
   machine noise hits all three alike and no search follows a search of its own text), on
   SciFact's exact index and on a plaid index (4-bit) of the same vectors.
3. The keyword index's cost: ``Index.add`` of the first ``--subset`` SciFact documents with and
   without it, interleaved, best of ``--reps``, and their size on disk; since encoding dominates
   and its speed moves with the machine's load, also the keyword work alone (indexing the same
   texts into the table of a copy of the store) against the whole add; on the full SciFact
   index, the keyword table's share (a vacuumed copy of the store without it against one with
   it) and the time indexing all of its texts takes.

Indexes are built under ``--work`` (default: a temporary directory, removed afterwards) and
reused from there when present: encoding SciFact takes minutes. An index found without a keyword
index gets one (``add_keyword_index``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import colmax
import numpy as np
from colmax.evaluation import evaluate, read_qrels, read_queries
from colmax.evaluation.corpus import read_corpus
from colmax.index import keyword

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODES = ("semantic", "keyword", "hybrid")
DATASETS = {"scifact": "SciFact", "cranfield": "Cranfield"}
# Texts a mode searches in a row in the latency check (see ``latency``).
BLOCK = 10


def cpu() -> str:
    """The CPU's model name and the vector extensions that matter here."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = re.search(r"model name\s*:\s*(.*)", text)
    flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split()) if "flags" in text else set()
    extensions = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile") if f in flags]
    return f"{name.group(1) if name else 'unknown CPU'} ({', '.join(extensions) or 'no AVX2'})"


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def bm25_reference(data: Path) -> dict[str, float]:
    """nDCG@10 of the BM25 runs in SOURCE.md, by setting."""
    text = (data / "SOURCE.md").read_text()
    found = {}
    for setting in ("k1=1.2, b=0.75", "k1=0.9, b=0.4"):
        m = re.search(re.escape(setting) + r".*?nDCG@10 \*\*([0-9.]+)\*\*", text)
        if m:
            found[setting] = float(m.group(1))
    return found


def exact_index(work: Path, data: Path, threads) -> colmax.Index:
    path = work / f"{data.name}-exact"
    if not path.exists():
        corpus = read_corpus(data)
        t0 = time.perf_counter()
        index = colmax.Index.create(path, kind="exact", storage="float32", threads=threads)
        index.add(corpus.texts, corpus.ids, corpus.metadata, progress=True)
        print(f"built {path} in {time.perf_counter() - t0:.0f} s", flush=True)
        index.close()
    index = colmax.Index.open(path, threads=threads)
    if not index.info()["keyword_index"]:
        t0 = time.perf_counter()
        index.add_keyword_index()
        print(f"added the keyword index to {path} in {time.perf_counter() - t0:.2f} s", flush=True)
    return index


def plaid_index(work: Path, exact: colmax.Index, threads) -> colmax.Index:
    """A 4-bit plaid index of the exact index's vectors and texts (no re-encoding)."""
    path = work / "scifact-plaid"
    if not path.exists():
        docs = [exact.get(i) for i in exact.ids()]
        index = colmax.Index.create(path, kind="plaid", nbits=4)
        index.add_embeddings(
            [d.embeddings for d in docs],
            [d.id for d in docs],
            [d.metadata for d in docs],
            texts=[d.text for d in docs],
        )
        index.close()
    return colmax.Index.open(path, threads=threads)


def quality(indexes: dict, data_root: Path) -> None:
    print("\n1. quality (colmax.evaluation.evaluate, one query at a time), nDCG@10 / Recall@100")
    print(f"{'':<10}" + "".join(f"{m:>18}" for m in MODES) + f"{'BM25 k1 1.2':>13}{'BM25 k1 0.9':>13}")
    results = {}
    for name, index in indexes.items():
        data = data_root / name
        queries, qrels = read_queries(data / "queries.jsonl"), read_qrels(data / "qrels.tsv")
        results[name] = {m: evaluate(index, queries, qrels, search_options={"mode": m}) for m in MODES}
        bm25 = bm25_reference(data)
        row = "".join(f"{r['ndcg@10']:>10.4f} / {r['recall@100']:.3f}" for r in results[name].values())
        refs = "".join(f"{bm25.get(s, float('nan')):>13.4f}" for s in ("k1=1.2, b=0.75", "k1=0.9, b=0.4"))
        print(f"{DATASETS[name]:<10}{row}{refs}", flush=True)
    sci, cran = results["scifact"], results["cranfield"]
    print(f"target SciFact hybrid nDCG@10 >= 0.72: {sci['hybrid']['ndcg@10']:.4f}")
    gain = cran["hybrid"]["ndcg@10"] - cran["semantic"]["ndcg@10"]
    print(f"target Cranfield hybrid - semantic >= +0.010: {gain:+.4f}")
    for name in results:
        bm25 = bm25_reference(data_root / name)["k1=1.2, b=0.75"]
        diff = results[name]["keyword"]["ndcg@10"] - bm25
        print(f"target {DATASETS[name]} keyword - BM25 (k1 1.2, b 0.75) within 0.01 (or better): {diff:+.4f}")


def latency(index: colmax.Index, texts: list[str], label: str) -> float:
    """Print the three modes' latency on ``index``; return keyword search's p50. The texts go in
    blocks: each mode searches a whole block, the modes' order rotating from block to block, so
    machine noise hits all three alike while no search follows another search of its own text
    (which finds the caches warm with that query's lists and vectors)."""
    for mode in MODES:  # warm up: the model, the pages, SQLite's cache, the keyword side's threads
        index.search(texts[0], k=10, mode=mode)
    times = {m: [] for m in MODES}
    for b, start in enumerate(range(0, len(texts), BLOCK)):
        for mode in MODES[b % 3 :] + MODES[: b % 3]:
            for text in texts[start : start + BLOCK]:
                t0 = time.perf_counter()
                index.search(text, k=10, mode=mode)
                times[mode].append((time.perf_counter() - t0) * 1e3)
    p = {m: np.percentile(v, [50, 99]) for m, v in times.items()}
    cells = "  ".join(f"{m} {p[m][0]:.1f} / {p[m][1]:.1f}" for m in MODES)
    ratio = p["hybrid"][0] / p["semantic"][0]
    print(f"{label:<22} {cells}  hybrid/semantic p50 {ratio:.3f} (target <= 1.15)", flush=True)
    return p["keyword"][0]


def keyword_table_cost(store: Path) -> tuple[int, float]:
    """Bytes the keyword table takes in a copy of ``store``, and the seconds indexing all of its
    texts takes (the copy without the table, vacuumed, against the copy with it built again)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "store.sqlite"
        shutil.copyfile(store, copy)
        conn = sqlite3.connect(copy, isolation_level=None)
        try:
            if keyword.exists(conn):
                conn.execute("DROP TABLE keyword")
            conn.execute("VACUUM")
            without = copy.stat().st_size
            t0 = time.perf_counter()
            conn.execute("BEGIN")
            keyword.create(conn, passages=True)  # a store of this colmax: one keyword row per passage
            conn.execute("COMMIT")
            seconds = time.perf_counter() - t0
            conn.execute("VACUUM")
        finally:
            conn.close()
        return copy.stat().st_size - without, seconds


def indexing_cost(data: Path, exact: colmax.Index, subset: int, reps: int) -> None:
    print(f"\n3. cost of the keyword index (SciFact, first {subset} documents, best of {reps}, interleaved)")
    corpus = read_corpus(data)
    texts, ids, metas = corpus.texts[:subset], corpus.ids[:subset], corpus.metadata[:subset]
    encoder = exact.encoder
    best, size = {True: float("inf"), False: float("inf")}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            for with_keyword in (rep % 2 == 0, rep % 2 == 1):
                path = Path(tmp) / f"ix-{rep}-{with_keyword}"
                index = colmax.Index.create(path, encoder, keyword=with_keyword)
                t0 = time.perf_counter()
                index.add(texts, ids, metas)
                best[with_keyword] = min(best[with_keyword], time.perf_counter() - t0)
                store = path / index._snapshot.manifest.store
                index.close()
                size[with_keyword] = dir_size(path)
                if not with_keyword:
                    _, fts_seconds = keyword_table_cost(store)
                shutil.rmtree(path)
    print(
        f"Index.add end to end: {best[False]:.2f} s without, {best[True]:.2f} s with: ratio "
        f"{best[True] / best[False]:.3f} (target <= 1.10; encoding dominates, so this moves with the "
        f"machine's load); the keyword work alone, {fts_seconds:.3f} s: ratio "
        f"{(best[False] + fts_seconds) / best[False]:.4f}"
    )
    print(
        f"size on disk {size[False] / 2**20:.1f} -> {size[True] / 2**20:.1f} MiB: ratio "
        f"{size[True] / size[False]:.4f} (target <= 1.05)"
    )
    total = dir_size(exact.path)
    extra, seconds = keyword_table_cost(exact.path / exact._snapshot.manifest.store)
    print(
        f"full SciFact index: {total / 2**20:.1f} MiB, of which the keyword index {extra / 2**20:.1f} MiB: "
        f"ratio {total / (total - extra):.4f} (target <= 1.05); indexing every text takes {seconds:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA, help="directory holding scifact/ and cranfield/")
    parser.add_argument("--work", type=Path, default=None, help="where indexes are built and reused")
    parser.add_argument("--queries", type=int, default=300, help="SciFact queries timed (default all 300)")
    parser.add_argument("--subset", type=int, default=1000, help="documents of the indexing check")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the indexing check")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    print(f"colmax {colmax.__version__}, ISA {colmax.active_isa()}, {cpu()}")

    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-hybrid-")
        args.work = Path(tmp.name)
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        exact = {name: exact_index(args.work, args.data / name, args.threads) for name in DATASETS}
        quality(exact, args.data)

        print("\n2. latency, ms p50 / p99 (query encoding included), k=10")
        queries = read_queries(args.data / "scifact" / "queries.jsonl")
        texts = list(queries.values())[: args.queries]
        keyword_p50 = latency(exact["scifact"], texts, "SciFact exact float32")
        plaid = plaid_index(args.work, exact["scifact"], args.threads)
        keyword_p50 = max(keyword_p50, latency(plaid, texts, "SciFact plaid 4-bit"))
        print(f"target keyword p50 <= 10 ms: {keyword_p50:.1f} ms")

        indexing_cost(args.data / "scifact", exact["scifact"], args.subset, args.reps)
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
