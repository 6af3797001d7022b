"""The defaults of issue 19, measured in one run: the kind threshold, the default precision, the
default index against today's exact float32 one, and compress against re-encoding.

    python benchmarks/bench_defaults.py [--data ../shared/data] [--threads 2]

1. Threshold: exact MaxSim of SciFact's query matrices over prefixes of its documents (100k to
   815k stored tokens), float32, float16 and bfloat16, interleaved. Besides wall time it prints
   CPU time / threads, which a shared machine's time-slicing does not inflate: that is the
   figure the threshold (defaults.AUTO_PLAID_TOKENS) is read from, as the token count where
   exact search passes 50 ms.
2. Precision: nDCG@10 of exact MaxSim over SciFact and Cranfield in each storage dtype (direct
   top-k over the stored form, the exact index's kernel), against float32.
3. Defaults: the index `colmax index` builds for SciFact by default (kind and storage resolved as
   the CLI does) against an exact float32 index, both from the same cached vectors with texts;
   the 300 queries as text (query encoding and the default hybrid mode included, as
   `colmax eval` runs them), the two indexes alternating per query; p50 ratio and nDCG@10.
4. Compress: the exact float32 index compressed into plaid, timed, against encoding the corpus
   (timed on an evenly spread sample of 500 documents, scaled); top-10 recall and nDCG@10 of
   the compressed index against the plaid index built from the same vectors.

Encoded vectors come from benchmarks/bench_scale.py's cache ($COLMAX_CACHE_DIR/bench).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import colmax
import numpy as np
from bench_scale import DATA, encoded
from colmax.evaluation import read_queries, score_run
from colmax.evaluation.corpus import read_corpus
from colmax.index import defaults

BUDGET_MS = 50.0


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line), "?")
    flags = out.split("Flags:", 1)[-1]
    isas = [f for f in ("avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({', '.join(isas) or 'no AVX-512'}), {os.cpu_count()} CPUs"


def stored_forms(tokens: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "float32": tokens,
        "float16": tokens.astype(np.float16),
        "bfloat16": colmax.to_bfloat16(tokens),
    }


def threshold(docs: colmax.Ragged, queries: list[np.ndarray], threads: int) -> None:
    print(f"\n1. exact MaxSim p50 vs stored tokens, {threads} threads, {len(queries)} queries, 3 rounds")
    forms = stored_forms(docs.tokens)
    sizes = [100_000, 200_000, 400_000, docs.tokens.shape[0]]
    wall: dict = {}
    cpu: dict = {}
    for _ in range(3):
        for n in sizes:
            n_docs = min(int(np.searchsorted(docs.offsets, n)), len(docs))
            offsets = docs.offsets[: n_docs + 1]
            for name, stored in forms.items():
                rows = stored[: int(offsets[-1])]
                w, c = [], []
                for q in queries:
                    t0, c0 = time.perf_counter(), time.process_time()
                    colmax.maxsim_topk(q, rows, offsets, 10, threads=threads)
                    c.append(time.process_time() - c0)
                    w.append(time.perf_counter() - t0)
                wall.setdefault((name, n), []).append(np.median(w) * 1e3)
                cpu.setdefault((name, n), []).append(np.median(c) * 1e3 / threads)
    print(f"{'storage':<10}{'tokens':>10}{'wall p50 ms':>13}{'CPU/threads ms':>16}{'ns/token':>10}")
    for name in forms:
        per_token = []
        for n in sizes:
            w, c = np.median(wall[(name, n)]), np.median(cpu[(name, n)])
            per_token.append(c / n)
            print(f"{name:<10}{n:>10,}{w:>13.1f}{c:>16.1f}{c / n * 1e6:>10.1f}")
        crossing = BUDGET_MS / np.median(per_token)
        print(f"{name:<10} exact search passes {BUDGET_MS:.0f} ms at ~{crossing:,.0f} tokens (CPU/threads)")
    print(f"defaults.AUTO_PLAID_TOKENS = {defaults.AUTO_PLAID_TOKENS:,}")


def precision(name: str, data: Path, encoder, threads: int) -> None:
    ids, docs, judged, qs, qrels = encoded(name, data, encoder)
    queries = [np.ascontiguousarray(q) for q in qs]
    scores = {}
    for storage, stored in stored_forms(docs.tokens).items():
        run = {}
        for qid, q in zip(judged, queries):
            rows, _ = colmax.maxsim_topk(q, stored, docs.offsets, 10, threads=threads)
            run[qid] = [ids[r] for r in rows.tolist()]
        scores[storage] = score_run(run, qrels)["ndcg@10"]
    line = ", ".join(f"{s} {v:.4f} ({v - scores['float32']:+.4f})" for s, v in scores.items())
    print(f"{name}: nDCG@10 {line}")


def build(path: Path, encoder, docs, ids, texts, threads, **create) -> tuple[colmax.Index, float]:
    t0 = time.perf_counter()
    index = colmax.Index.create(path, encoder, threads=threads, **create)
    index.add_embeddings(docs, ids, texts=texts)
    return index, time.perf_counter() - t0


def defaults_vs_exact(data: Path, encoder, tmp: Path, threads: int) -> tuple:
    ids, docs, judged, qs, qrels = encoded("scifact", data / "scifact", encoder)
    texts = read_corpus(data / "scifact").texts
    n_tokens = defaults.estimate_tokens(encoder, texts)
    kind = defaults.resolve_kind("auto", n_tokens)
    print(
        f"\n3. SciFact: {len(ids)} documents, {docs.tokens.shape[0]:,} tokens stored "
        f"(estimated before encoding: {n_tokens:,}); auto resolves to {kind!r}, "
        f"default exact storage {defaults.default_storage()!r}"
    )
    exact, exact_s = build(tmp / "exact", encoder, docs, ids, texts, threads, kind="exact", storage="float32")
    default, default_s = build(tmp / "default", encoder, docs, ids, texts, threads, kind=kind)
    texts_of = read_queries(data / "scifact" / "queries.jsonl")
    runs: dict = {"exact": {}, "default": {}}
    ms: dict = {"exact": [], "default": []}
    cpu: dict = {"exact": [], "default": []}  # process CPU time (all threads): what load does not inflate
    pair = {"exact": exact, "default": default}
    for index in pair.values():
        index.search(texts_of[judged[0]])  # warm up
    for i, qid in enumerate(judged):
        for name in ("exact", "default") if i % 2 == 0 else ("default", "exact"):
            t0, c0 = time.perf_counter(), time.process_time()
            hits = pair[name].search(texts_of[qid], k=10)
            cpu[name].append((time.process_time() - c0) * 1e3)
            ms[name].append((time.perf_counter() - t0) * 1e3)
            runs[name][qid] = [h.id for h in hits]
    print(
        f"{'index':<34}{'p50 ms':>8}{'p99 ms':>8}{'CPU p50 ms':>11}"
        f"{'nDCG@10':>9}{'size MiB':>10}{'build s':>9}"
    )
    ndcg = {}
    for name, seconds in (("exact", exact_s), ("default", default_s)):
        info = pair[name].info()
        label = (
            "exact float32"
            if name == "exact"
            else f"default ({info['kind']}, {info['storage'] or 'no copy'})"
        )
        ndcg[name] = score_run(runs[name], qrels)["ndcg@10"]
        print(
            f"{label:<34}{np.median(ms[name]):>8.1f}{np.percentile(ms[name], 99):>8.1f}"
            f"{np.median(cpu[name]):>11.1f}{ndcg[name]:>9.4f}"
            f"{info['size_on_disk'] / 2**20:>10.1f}{seconds:>9.1f}"
        )
    ratio = np.median(ms["exact"]) / np.median(ms["default"])
    cpu_ratio = np.median(cpu["exact"]) / np.median(cpu["default"])
    print(
        f"defaults vs exact float32: p50 {ratio:.2f}x faster (target >= 4; CPU time per query "
        f"{cpu_ratio:.2f}x), nDCG@10 "
        f"{ndcg['default'] - ndcg['exact']:+.4f} (target within 0.005); queries as text, hybrid mode"
    )
    return exact, default, ids, docs, judged, qs, qrels, texts


def compress_vs_reencode(exact, built, encoder, texts, judged, qs, qrels, tmp: Path, threads: int) -> None:
    print("\n4. compress the exact float32 SciFact index, against re-encoding and a plaid build")
    t0 = time.perf_counter()
    compressed = exact.compress(tmp / "compressed")
    compress_s = time.perf_counter() - t0
    step = max(1, len(texts) // 500)
    sample = texts[::step]
    t0 = time.perf_counter()
    encoder.encode_documents(sample)
    encode_s = (time.perf_counter() - t0) * len(texts) / len(sample)
    queries = [np.ascontiguousarray(q) for q in qs]
    recall, runs = [], {"built": {}, "compressed": {}}
    for qid, q in zip(judged, queries):
        want = [h.id for h in built.search(q, k=10)]
        got = [h.id for h in compressed.search(q, k=10)]
        recall.append(len(set(want) & set(got)) / 10)
        runs["built"][qid], runs["compressed"][qid] = want, got
    ndcg = {name: score_run(run, qrels)["ndcg@10"] for name, run in runs.items()}
    same_ids = compressed.ids() == built.ids()
    print(
        f"compress {compress_s:.1f} s vs re-encoding the corpus ~{encode_s:.0f} s (from {len(sample)} "
        f"documents): {encode_s / compress_s:.1f}x less time; ids equal: {same_ids}; top-10 recall vs "
        f"the plaid index built from the same vectors {np.mean(recall):.3f} (target >= 0.95); nDCG@10 "
        f"compressed {ndcg['compressed']:.4f}, built {ndcg['built']:.4f} "
        f"({ndcg['compressed'] - ndcg['built']:+.4f}, target within 0.005)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["threshold", "precision", "defaults"])
    args = parser.parse_args()
    encoder = colmax.Encoder(threads=args.threads)
    print(f"colmax {colmax.__version__} on {cpu_name()}; ISA {colmax.active_isa()}; {encoder}")
    print("shared machine: compare the ratios, re-run on a quiet one for absolute figures")
    ids, docs, judged, qs, qrels = encoded("scifact", args.data / "scifact", encoder)
    if "threshold" not in args.skip:
        threshold(docs, [np.ascontiguousarray(q) for q in qs][::10], args.threads)
    if "precision" not in args.skip:
        print("\n2. exact MaxSim nDCG@10 by storage (difference to float32)")
        for name in ("scifact", "cranfield"):
            precision(name, args.data / name, encoder, args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if "defaults" in args.skip:  # part 4 only: the two indexes it needs, untimed
            texts = read_corpus(args.data / "scifact").texts
            exact, _ = build(Path(tmp) / "exact", encoder, docs, ids, texts, args.threads, storage="float32")
            built, _ = build(Path(tmp) / "plaid", encoder, docs, ids, texts, args.threads, kind="plaid")
        else:
            exact, built, ids, docs, judged, qs, qrels, texts = defaults_vs_exact(
                args.data, encoder, Path(tmp), args.threads
            )
            if built.kind != "plaid":
                built, _ = build(Path(tmp) / "plaid", encoder, docs, ids, texts, args.threads, kind="plaid")
        compress_vs_reencode(exact, built, encoder, texts, judged, qs, qrels, Path(tmp), args.threads)


if __name__ == "__main__":
    main()
