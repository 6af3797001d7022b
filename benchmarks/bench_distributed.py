"""A sharded index on local Ray against one index, on SciFact (issue 17's targets).

    python benchmarks/bench_distributed.py [--data ../shared/data/scifact] [--docs N] [--rounds R]
        [--no-build | --plaid-only | --hybrid]

On one machine 2 shards cannot be faster than one index using the same cores; what this shows is
what the fan-out costs. Every pair is measured interleaved in the same run, on the same queries:

- build: ``ShardedIndex.create`` + ``add`` of ``--build-docs`` texts to 2 shards (each shard's
  actor encodes and writes its half on 1 thread) against ``Index.create`` + ``add`` on 2
  threads, alternating, best of ``--rounds``; target <= 1.15x.
- overhead: search p50 over 2 shards x 1 thread against one index with 2 threads, query
  matrices given (encoding left out of both, which makes the ratio stricter); target
  <= 1.2x + 3 ms. Exact (float32) and plaid (4-bit, shared codebook, built from the same vectors).
- CPU per search, one at a time: this process's CPU time plus the shard actors' (from /proc),
  against one index's: the work a search costs, which other load moves less than latencies.
- throughput at concurrency 4 (four client threads): 2 shards x 1 thread against one index with
  2 threads; target >= 0.8x.
- ``--hybrid``: the default (hybrid) search of the query texts, encoding included on both sides,
  over 2 shards against one index holding the same vectors and texts (exact and plaid): p50,
  throughput, and how often the two top-10s are equal (exact: always, with the same scores; BM25
  is computed under the statistics of both shards together, docs/distributed.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import colmax
import numpy as np
from colmax.evaluation import read_queries
from colmax.evaluation.corpus import read_corpus

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line), "?")
    flags = next((line for line in out.splitlines() if line.startswith("Flags")), "")
    extra = [f for f in ("avx512f", "avx512_bf16", "avx512_vnni", "amx_tile") if f in flags.split()]
    return f"{model} ({', '.join(extra) or 'no AVX-512'}), {len(colmax.supported_isas())} ISAs"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def latencies(one, sharded, queries, truth, **knobs):
    """Per query, one index then the sharded one (alternating which goes first); also each
    side's recall of the ``truth`` top-10 ids and the share of queries with equal top-10s."""
    a, b, same, found = [], [], 0, [0, 0]
    for i, (q, want) in enumerate(zip(queries, truth)):
        order = [(0, one, a), (1, sharded, b)] if i % 2 == 0 else [(1, sharded, b), (0, one, a)]
        hits = [None, None]
        for side, index, out in order:
            t0 = time.perf_counter()
            hits[side] = [h.id for h in index.search(q, 10, **knobs)]
            out.append(time.perf_counter() - t0)
            found[side] += len(set(hits[side]) & want)
        same += hits[0] == hits[1]
    n = 10 * len(queries)
    return a, b, same / len(queries), found[0] / n, found[1] / n


def throughput(index, queries, clients: int = 4, **knobs) -> float:
    with ThreadPoolExecutor(clients) as pool:
        t0 = time.perf_counter()
        list(pool.map(lambda q: index.search(q, 10, **knobs), queries))
        return len(queries) / (time.perf_counter() - t0)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) process ``pid`` has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_search(index, queries, actors=(), **knobs) -> float:
    """ms of CPU per search in this process and the processes ``actors``, searching one query
    at a time: what a search costs in work, which the machine's other load moves less than it
    moves latencies. It includes Ray's cost of waking each process for each call, which
    concurrent searches share (an actor with calls queued runs them back to back)."""
    here, there = time.process_time(), sum(map(process_cpu, actors))
    for q in queries:
        index.search(q, 10, **knobs)
    spent = time.process_time() - here + sum(map(process_cpu, actors)) - there
    return spent / len(queries) * 1000


def p50(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def compare(name, one, sharded, queries, truth, rounds, sharded_knobs=None, **knobs) -> None:
    sharded_knobs = knobs if sharded_knobs is None else sharded_knobs
    a, b, agree, recall_one, recall_sharded = latencies(
        one, Knobbed(sharded, sharded_knobs), queries, truth, **knobs
    )
    bound = 1.2 * p50(a) + 3
    verdict = "PASS" if p50(b) <= bound else "FAIL"
    print(
        f"{name} search p50: one index {p50(a):.2f} ms, 2 shards {p50(b):.2f} ms, "
        f"ratio {p50(b) / p50(a):.3f} (target <= 1.2x + 3 ms = {bound:.2f} ms: {verdict}); "
        f"p99 {np.percentile(a, 99) * 1000:.1f} / {np.percentile(b, 99) * 1000:.1f} ms; "
        f"equal top-10 on {agree:.1%} of queries; "
        f"recall of the exact top-10 {recall_one:.3f} / {recall_sharded:.3f}"
    )
    actors = [pid for replicas in sharded.placement() for pid, _ in replicas]
    one_cpu = cpu_per_search(one, queries, **knobs)
    sharded_cpu = cpu_per_search(sharded, queries, actors, **sharded_knobs)
    print(
        f"{name} CPU per search (coordinator and shard actors, one search at a time): one index "
        f"{one_cpu:.2f} ms, 2 shards {sharded_cpu:.2f} ms; one / sharded {one_cpu / sharded_cpu:.3f}"
    )
    qps_one, qps_sharded = [], []
    for _ in range(rounds):  # interleaved rounds: drift in machine speed hits both
        qps_one.append(throughput(one, queries, **knobs))
        qps_sharded.append(throughput(sharded, queries, **sharded_knobs))
    ratio = max(qps_sharded) / max(qps_one)
    verdict = "PASS" if ratio >= 0.8 else "FAIL"
    print(
        f"{name} throughput at concurrency 4: one index (2 threads) {max(qps_one):.1f} q/s, 2 shards x 1 "
        f"thread {max(qps_sharded):.1f} q/s, ratio {ratio:.3f} (target >= 0.8: {verdict})"
    )


class Knobbed:
    """An index whose searches take other knobs than the side it is compared with."""

    def __init__(self, index, knobs) -> None:
        self.index, self.knobs = index, knobs

    def search(self, q, k, **_):
        return self.index.search(q, k, **self.knobs)


def compare_builds(tmp: Path, texts, ids, args) -> None:
    """Build time of one index and of 2 shards, each from the texts (encoding included)."""
    from colmax.distributed import ShardedIndex

    # the first --build-docs texts, one index and 2 shards in turn (order alternating, best of
    # --rounds each): encoding is the bulk, on both cores either way
    sub_texts, sub_ids = texts[: args.build_docs], ids[: args.build_docs]
    t_one = t_sharded = float("inf")
    for r in range(args.rounds):

        def build_one(r=r):
            index = colmax.Index.create(tmp / f"build-one-{r}", storage="float32", threads=2)
            index.add(sub_texts, sub_ids)
            index.close()

        def build_sharded(r=r):
            with ShardedIndex.create(
                tmp / f"build-sharded-{r}", 2, storage="float32", threads_per_shard=1
            ) as index:
                index.add(sub_texts, sub_ids)

        if r % 2 == 0:
            t_one, t_sharded = min(t_one, timed(build_one)), min(t_sharded, timed(build_sharded))
        else:
            t_sharded, t_one = min(t_sharded, timed(build_sharded)), min(t_one, timed(build_one))
    ratio = t_sharded / t_one
    print(
        f"build (encode + write {len(sub_texts)} docs, best of {args.rounds}): one index {t_one:.1f} s, "
        f"2 shards through Ray {t_sharded:.1f} s (actor start included), ratio {ratio:.3f} "
        f"(target <= 1.15: {'PASS' if ratio <= 1.15 else 'FAIL'})"
    )


def compare_hybrid(tmp: Path, vectors, ids, texts, questions, rounds) -> None:
    """Hybrid search (the default for text queries) of the same vectors and texts in one index
    and in 2 shards, exact and plaid; the queries are texts, encoded by each side."""
    from colmax.distributed import ShardedIndex

    truth = None  # the exact index's hybrid top-10s: what "recall" counts for both kinds
    for kind in ("exact", "plaid"):
        one = colmax.Index.create(tmp / f"hybrid-one-{kind}", kind=kind, threads=2)
        one.add_embeddings(vectors, ids, texts=texts)
        with ShardedIndex.create(tmp / f"hybrid-sharded-{kind}", 2, kind=kind) as sharded:
            sharded.add_embeddings(vectors, ids, texts=texts)
            assert one.default_mode == "hybrid"
            if truth is None:
                truth = [{h.id for h in one.search(q, 10)} for q in questions]
            if kind == "exact":  # the same ids, order and scores (docs/distributed.md)
                drift = max(
                    abs(a.score - b.score)
                    for q in questions[:50]
                    for a, b in zip(one.search(q, 10), sharded.search(q, 10))
                )
                print(f"exact hybrid: largest fused-score difference over 50 queries' top-10s {drift:.2e}")
            compare(f"{kind} hybrid (text queries)", one, sharded, questions, truth, rounds)
        one.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--docs", type=int, default=None, help="first N documents only (quick runs)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of builds and throughput")
    parser.add_argument("--plaid-only", action="store_true", help="only the plaid comparisons")
    parser.add_argument("--build-docs", type=int, default=1500, help="documents in the build comparison")
    parser.add_argument(
        "--no-build", action="store_true", help="no build comparison: the search comparisons only"
    )
    parser.add_argument("--hybrid", action="store_true", help="only the hybrid comparisons (text queries)")
    args = parser.parse_args()

    import ray
    from colmax.distributed import ShardedIndex

    corpus = read_corpus(args.data)
    texts, ids = corpus.texts[: args.docs], corpus.ids[: args.docs]
    questions = list(read_queries(args.data / "queries.jsonl").values())[: args.queries]
    encoder = colmax.Encoder()
    queries = list(encoder.encode_queries(questions))
    print(f"CPU: {cpu_name()}; active ISA {colmax.active_isa()}")
    print(f"{len(texts)} documents, {len(queries)} queries; Ray {ray.__version__}, ray.init(num_cpus=2)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="colmax-bench-") as tmp:
        tmp = Path(tmp)
        if args.hybrid:
            compare_hybrid(tmp, encoder.encode_documents(texts), ids, texts, questions, args.rounds)
            ray.shutdown()
            return
        if not (args.plaid_only or args.no_build):
            compare_builds(tmp, texts, ids, args)
        # Both sides of every search comparison hold the same vectors, from one pass of the
        # encoder, a document to a row: built from texts, the shards would split long documents
        # into passages and encode in batches of their own, and the int8 model scales
        # activations per batch, so their vectors would differ slightly from one index's.
        vectors = encoder.encode_documents(texts)
        one = colmax.Index.create(tmp / "same", dim=vectors.tokens.shape[1], storage="float32", threads=2)
        one.add_embeddings(vectors, ids, texts=texts)
        truth = [{h.id for h in hits} for hits in one.search_batch(queries, 10)]
        if not args.plaid_only:
            dim = vectors.tokens.shape[1]
            with ShardedIndex.create(tmp / "sharded", 2, dim=dim, storage="float32") as sharded:
                sharded.add_embeddings(vectors, ids, texts=texts)
            sharded = ShardedIndex.open(tmp / "sharded")
            compare("exact", one, sharded, queries, truth, args.rounds)
            sharded.close()

        # plaid from the same vectors: the sharded index trains the same codebook as one index,
        # on the same sample spread over its shards
        one_p = colmax.Index.create(tmp / "one-plaid", dim=vectors.tokens.shape[1], kind="plaid", threads=2)
        t_one = timed(lambda: one_p.add_embeddings(vectors, ids, texts=texts))
        sharded_p = ShardedIndex.create(tmp / "sharded-plaid", 2, dim=vectors.tokens.shape[1], kind="plaid")
        t_sharded = timed(lambda: sharded_p.add_embeddings(vectors, ids, texts=texts))
        print(
            f"plaid build from vectors: one index {t_one:.1f} s, 2 shards {t_sharded:.1f} s "
            "(training included)"
        )
        compare("plaid", one_p, sharded_p, queries, truth, args.rounds)
        # an even split of one index's budget: the same exact-scoring work as one index
        even = {"ncandidates": 128}
        compare("plaid, ncandidates 128 on each shard", one_p, sharded_p, queries, truth, args.rounds, even)
        # every shard scoring one index's whole default budget: more recall, twice the work
        full = {"ncandidates": 256}
        compare("plaid, ncandidates 256 on each shard", one_p, sharded_p, queries, truth, args.rounds, full)
        sharded_p.close()
    ray.shutdown()


if __name__ == "__main__":
    main()
