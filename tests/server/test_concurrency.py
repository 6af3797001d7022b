"""Concurrency over real HTTP: searches run while a write is under way, writes to one index are
serialized (none fails for want of the lock), and a bounded mix of requests has no errors."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import colmax
from colmax.cli.demo import SAMPLE
from colmax.evaluation.corpus import read_jsonl
from serving import QUESTION

TEXTS = read_jsonl(SAMPLE).texts


def long_documents(n, seed):
    """``n`` documents of ~150 tokens each: slow enough to encode that an add lasts seconds."""
    rng = random.Random(seed)
    return [" ".join(rng.sample(TEXTS, 8)) for _ in range(n)]


def test_a_long_write_does_not_block_searches(server):
    client = colmax.Client(server.url, index="scratch")
    done = threading.Event()
    ids = [f"long-{i}" for i in range(100)]

    def add():
        try:
            client.add(long_documents(len(ids), 0), ids=ids)
        finally:
            done.set()

    writer = threading.Thread(target=add)
    writer.start()
    try:
        time.sleep(0.5)  # the add is encoding
        during = 0
        deadline = time.monotonic() + 120
        while not done.is_set() and during < 5 and time.monotonic() < deadline:
            assert client.search(QUESTION, k=3)[0].id == "capital-france"
            during += int(not done.is_set())
        assert during >= 3, "searches waited for the write to finish"
    finally:
        writer.join(timeout=300)
    assert not writer.is_alive()
    assert client.get("long-7").id == "long-7"
    client.delete(ids)


def test_concurrent_writes_to_one_index_are_serialized(server):
    client = colmax.Client(server.url, index="scratch")
    before = client.indexes()["scratch"]["generation"]

    def add(i):
        return client.add([f"Concurrent document number {i}."], ids=[f"conc-{i}"])

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(add, range(16))) == [[f"conc-{i}"] for i in range(16)]
    assert client.indexes()["scratch"]["generation"] == before + 16  # one commit each
    assert client.get("conc-11").text == "Concurrent document number 11."
    client.delete([f"conc-{i}" for i in range(16)])


def test_a_mix_of_requests_has_no_errors(server):
    """300 requests from 8 threads: 95% searches, 5% adds and deletes (the benchmark runs 2,000
    on SciFact)."""
    client = colmax.Client(server.url, index="scratch")
    queries = ["capital of France", "tallest mountain", "a programming language", "the ocean", QUESTION]
    errors, lock = [], threading.Lock()

    def one(i):
        rng = random.Random(i)
        try:
            if rng.random() < 0.05:
                doc = f"mix-{i}"
                client.add([f"Mixed workload document {i} about {rng.choice(queries)}."], ids=[doc])
                client.delete(doc)
            else:
                assert len(client.search(rng.choice(queries), k=5)) == 5
        except Exception as e:  # collected: one failure must not hide the others
            with lock:
                errors.append(f"{i}: {type(e).__name__}: {e}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(300)))
    assert not errors, errors[:5]
