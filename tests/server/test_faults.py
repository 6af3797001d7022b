"""Faults: the server killed with SIGKILL during a stream of adds loses no acknowledged add and
leaves no half-written one; clients that vanish mid-request leave it serving."""

from __future__ import annotations

import socket
import threading
import time

import colmax
from colmax.index import Index
from serving import QUESTION, Server, build_demo_index


def test_kill_9_during_adds_loses_no_acknowledged_add(tmp_path):
    path = build_demo_index(tmp_path / "ix")
    server = Server(tmp_path, f"ix={path}").start()
    acknowledged: list[int] = []
    stop = threading.Event()

    def stream():
        client = colmax.Client(server.url, timeout=30)
        for i in range(500):
            if stop.is_set():
                return
            try:
                client.add([f"Streamed document number {i} about the capital of nowhere."], ids=[f"s-{i}"])
            except (ConnectionError, OSError):
                return  # the server is gone
            acknowledged.append(i)

    writer = threading.Thread(target=stream)
    try:
        writer.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < 8 and time.monotonic() < deadline and writer.is_alive():
            time.sleep(0.02)
        assert len(acknowledged) >= 8, server.log()
        server.kill()  # mid-stream: an add is almost surely in flight
    finally:
        stop.set()
        writer.join(timeout=60)
        server.stop()
    assert not writer.is_alive()

    server = Server(tmp_path, f"ix={path}").start()  # restart on the same directory
    try:
        client = colmax.Client(server.url)
        for i in acknowledged:
            assert client.get(f"s-{i}").text == f"Streamed document number {i} about the capital of nowhere."
        # the one in flight at the kill is whole or absent: never half-written
        n = len(client)
        assert n in (38 + len(acknowledged), 38 + len(acknowledged) + 1)
        if n > 38 + len(acknowledged):
            i = len(acknowledged)
            assert client.get(f"s-{i}").text.startswith(f"Streamed document number {i} ")
        # and the index accepts writes again (the next writer recovers the leftovers)
        client.add(["After the restart."], ids=["after"])
        assert client.search("After the restart", k=1)[0].id == "after"
    finally:
        server.stop()
    with Index.open(path) as index:
        index.verify()  # every file matches the manifest; the store agrees with it


def test_clients_that_disconnect_mid_request(server):
    # half a body, then gone
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /indexes/demo/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"query": "What is'
        )
    # a whole search, gone before the answer
    body = b'{"query": "What is the capital of France?", "k": 10, "explain": true}'
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /indexes/demo/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
    # an add whose client leaves: the add still commits, the server still serves
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        add = b'{"texts": ["A write whose client left."], "ids": ["left"]}'
        sock.sendall(
            b"POST /indexes/scratch/documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(add)}\r\n\r\n".encode()
            + add
        )
    client = colmax.Client(server.url, index="scratch")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.get("left")
            break
        except KeyError:
            time.sleep(0.1)
    client.delete("left")
    assert server.request("GET", "/health")[0] == 200
    assert colmax.Client(server.url, index="demo").search(QUESTION, k=1)[0].id == "capital-france"
