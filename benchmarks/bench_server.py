"""What serving over HTTP costs over in-process search (issue 15's targets), on loopback.

    python benchmarks/bench_server.py --index SCIFACT_INDEX [--data ../shared/data/scifact]
        [--queries 100] [--throughput-requests 200] [--mixed 2000] [--concurrency 8]
        [--max-seconds 900]

The index (e.g. `colmax index ../shared/data/scifact -o /tmp/scifact [--kind plaid]`) is copied
to a temporary directory first, served from there by `colmax serve` in a child process on
127.0.0.1, and searched in-process from that copy too; the mixed phase writes to the copy only.

1. Overhead at concurrency 1: the same queries through ``Index.search`` and ``colmax.Client``,
   interleaved (alternating which goes first); p50 and p99 of each. Target: server p50 <=
   1.10 x in-process p50 + 2 ms.
2. Throughput at concurrency 8: the same requests from 8 threads in-process and from 8 client
   threads, in interleaved rounds (--rounds), best kept. Target: server >= 0.9 x in-process.
3. A mix of requests at concurrency 8: 95% searches, 5% writes (an add, then a delete of the
   same document), counting every error. Target: 0 errors.
Also: the cost of the server's per-request check for other processes' commits (``reload()``).
Every phase is bounded by its request count and by --max-seconds; the server always stops.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import colmax
import numpy as np
from colmax.evaluation import read_queries

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def cpu_name() -> str:
    info = Path("/proc/cpuinfo").read_text()
    name = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?"
    )
    flags = next(
        (line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []
    )
    wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    return f"{name} ({', '.join(wanted) or 'no AVX2'})"


def start_server(path: Path, log: Path, max_seconds: float) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "colmax",
        "serve",
        f"bench={path}",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if json.loads(r.read())["status"] == "ok":
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{log.read_text()}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pct(times: list[float], q: float) -> float:
    return float(np.percentile(np.array(times) * 1e3, q))


def overhead(index, client, queries, k, deadline) -> None:
    local, remote = [], []
    for i, q in enumerate(queries):
        if time.monotonic() > deadline:
            break
        pair = [(index.search, local), (client.search, remote)]
        for search, times in pair if i % 2 == 0 else pair[::-1]:
            t0 = time.perf_counter()
            search(q, k=k)
            times.append(time.perf_counter() - t0)
    p50_local, p50_remote = pct(local, 50), pct(remote, 50)
    limit = 1.10 * p50_local + 2.0
    print(f"\n1. overhead at concurrency 1 ({len(local)} queries, k={k}, interleaved)")
    print(f"   in-process Index.search  p50 {p50_local:8.2f} ms  p99 {pct(local, 99):8.2f} ms")
    print(f"   HTTP via colmax.Client   p50 {p50_remote:8.2f} ms  p99 {pct(remote, 99):8.2f} ms")
    print(
        f"   ratio {p50_remote / p50_local:.3f}, added {p50_remote - p50_local:+.2f} ms; target p50 <= "
        f"{limit:.2f} ms (1.10x + 2 ms): {'met' if p50_remote <= limit else 'NOT met'}"
    )


def run_concurrently(
    fn, n_requests: int, concurrency: int, deadline: float
) -> tuple[float, int, list[float]]:
    """``fn(i)`` for i < n_requests from ``concurrency`` threads: (seconds, requests done, latencies)."""
    latencies: list[float] = []
    counter = iter(range(n_requests))
    lock = threading.Lock()

    def worker():
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            fn(i)
            with lock:
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return time.perf_counter() - t0, len(latencies), latencies


def throughput(index, client, queries, k, n, concurrency, rounds, deadline) -> None:
    best = {"in-process": 0.0, "HTTP": 0.0}
    for _ in range(rounds):
        for name, search in (("in-process", index.search), ("HTTP", client.search)):
            seconds, done, _ = run_concurrently(
                lambda i, s=search: s(queries[i % len(queries)], k=k), n, concurrency, deadline
            )
            best[name] = max(best[name], done / seconds)
    ratio = best["HTTP"] / best["in-process"]
    print(
        f"\n2. throughput at concurrency {concurrency} ({n} searches a round, "
        f"best of {rounds} interleaved rounds)"
    )
    print(f"   in-process {best['in-process']:7.2f} q/s   HTTP {best['HTTP']:7.2f} q/s")
    print(f"   ratio {ratio:.3f}; target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'}")


def mixed(client, queries, texts, k, n, concurrency, deadline) -> None:
    errors: list[str] = []
    writes = 0
    lock = threading.Lock()

    def one(i):
        nonlocal writes
        rng = random.Random(i)
        try:
            if rng.random() < 0.05:
                doc = f"bench-mixed-{i}"
                client.add([rng.choice(texts)], ids=[doc], metadata=[{"bench": True}])
                client.delete(doc)
                with lock:
                    writes += 1
            else:
                client.search(rng.choice(queries), k=k)
        except Exception as e:  # counted, not raised: the point is how many there are
            with lock:
                errors.append(f"request {i}: {type(e).__name__}: {e}")

    seconds, done, latencies = run_concurrently(one, n, concurrency, deadline)
    print(f"\n3. mixed requests at concurrency {concurrency}: {done} of {n} done in {seconds:.1f} s")
    print(
        f"   {done - writes} searches, {writes} add+delete pairs; {done / seconds:.2f} req/s; "
        f"p50 {pct(latencies, 50):.1f} ms, p99 {pct(latencies, 99):.1f} ms"
    )
    print(f"   errors: {len(errors)}; target 0: {'met' if not errors and done == n else 'NOT met'}")
    for line in errors[:5]:
        print("   " + line)


def reload_cost(index, repeats: int = 2000) -> float:
    t0 = time.perf_counter()
    for _ in range(repeats):
        index.reload()
    return (time.perf_counter() - t0) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True, help="a SciFact index directory (copied first)")
    parser.add_argument("--data", type=Path, default=DATA, help="BEIR directory with queries.jsonl")
    parser.add_argument("--queries", type=int, default=100, help="queries in the overhead phase (0: skip it)")
    parser.add_argument("--throughput-requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds (best kept)")
    parser.add_argument("--mixed", type=int, default=2000, help="requests in the mixed phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=900, help="per phase")
    args = parser.parse_args()

    queries = list(read_queries(args.data / "queries.jsonl").values())
    with tempfile.TemporaryDirectory(prefix="colmax-bench-server-") as tmp:
        path = Path(tmp) / "index"
        shutil.copytree(args.index, path)
        index = colmax.Index.open(path)
        texts = [index.get(i).text for i in index.ids()[:200]]
        print(f"colmax {colmax.__version__}, ISA {colmax.active_isa()}, {cpu_name()}")
        info = index.info()
        print(f"index: {args.index} ({info['kind']}, {info['documents']} documents, {info['tokens']} tokens)")
        index.search(queries[0], k=args.k)  # load the model
        proc, url = start_server(path, Path(tmp) / "server.log", 300)
        try:
            client = colmax.Client(url, timeout=300)
            client.search(queries[0], k=args.k)
            if args.queries:
                overhead(index, client, queries[: args.queries], args.k, time.monotonic() + args.max_seconds)
            if args.throughput_requests:
                throughput(
                    index,
                    client,
                    queries,
                    args.k,
                    args.throughput_requests,
                    args.concurrency,
                    args.rounds,
                    time.monotonic() + args.max_seconds,
                )
            if args.mixed:
                mixed(
                    client,
                    queries,
                    texts,
                    args.k,
                    args.mixed,
                    args.concurrency,
                    time.monotonic() + args.max_seconds,
                )
            cost = reload_cost(index)
            print(f"\nreload() when nothing changed (the server's check before each read): {cost:.1f} us")
        finally:
            stop_server(proc)
            index.close()


if __name__ == "__main__":
    main()
