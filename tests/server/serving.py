"""Helpers of the server tests: `colmax serve` as a child process listening on a free 127.0.0.1
port, raw HTTP requests, the demo index. Every wait is bounded; a server that does not come up
fails the test with its log."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from colmax.cli.demo import SAMPLE
from colmax.evaluation.corpus import read_jsonl
from colmax.index import Index

QUESTION = "What is the capital of France?"
STARTUP_SECONDS = 90
API_KEY = "s3cret-key-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m colmax serve ARGS --port P` as a child process."""

    def __init__(self, log_dir: Path, *args: str) -> None:
        self.args, self.log_path = [str(a) for a in args], log_dir / "server.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        for _ in range(3):  # a port taken between free_port() and the bind: try another
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "colmax", "serve", *self.args, "--port", str(self.port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_healthy():
                return self
            self.stop()
            if "address already in use" not in self.log().lower():
                break
        raise AssertionError(f"the server did not come up:\n{self.log()}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _, body = self.request("GET", "/health", timeout=2)
                if status == 200 and body["status"] == "ok":
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """One request on a fresh connection: (status, headers, parsed JSON or raw bytes).
        ``body``: bytes as they are, anything else as JSON."""
        headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            kind = response.getheader("content-type", "")
            return response.status, dict(response.getheaders()), json.loads(raw) if "json" in kind else raw
        finally:
            conn.close()


def build_demo_index(path: Path, kind: str = "exact", storage: str | None = None) -> Path:
    """The demo corpus with a little metadata to filter on."""
    corpus = read_jsonl(SAMPLE)
    metadata = [{"topic": i.split("-")[0], "n": n} for n, i in enumerate(corpus.ids)]
    plaid = {"n_centroids": 16} if kind == "plaid" else {}
    with Index.create(path, kind=kind, storage=storage, **plaid) as index:
        index.add(corpus.texts, corpus.ids, metadata)
    return path
