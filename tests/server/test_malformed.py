"""Malformed requests, sent as raw HTTP: each gets its documented 4xx answer, never a 500, and
the server stays healthy after all of them."""

from __future__ import annotations

import pytest
from serving import QUESTION

S = "/indexes/demo/search"
D = "/indexes/scratch/documents"
JSON = {"Content-Type": "application/json"}

CASES = [
    # (method, path, body, headers, status, code)
    ("POST", S, b"{bad", JSON, 400, "invalid_json"),
    ("POST", S, b'{"query": "x",}', JSON, 400, "invalid_json"),
    ("POST", S, b"", JSON, 422, "invalid_request"),
    ("POST", S, b'"just a string"', JSON, 422, "invalid_request"),
    ("POST", S, b"[1, 2]", JSON, 422, "invalid_request"),
    ("POST", S, b'{"query": "x"}', {"Content-Type": "text/plain"}, 422, "invalid_request"),
    ("POST", S, {"query": QUESTION, "k": "ten"}, None, 422, "invalid_request"),
    ("POST", S, {"query": QUESTION, "k": 1.5}, None, 422, "invalid_request"),
    ("POST", S, {"query": QUESTION, "k": True}, None, 422, "invalid_request"),
    ("POST", S, {"query": QUESTION, "k": 0}, None, 422, "invalid_argument"),
    ("POST", S, {"query": QUESTION, "k": -3}, None, 422, "invalid_argument"),
    ("POST", S, {"query": QUESTION, "k": 1_000_000}, None, 422, "too_large"),
    ("POST", S, {"query": QUESTION, "k": 10**40}, None, 422, "too_large"),
    ("POST", S, {"query": ""}, None, 422, "invalid_argument"),
    ("POST", S, {"query": "   "}, None, 422, "invalid_argument"),
    ("POST", S, {"query": "word " * 200_000}, None, 422, "too_large"),  # a 1 MB query
    ("POST", S, {"query": 123}, None, 422, "invalid_request"),
    ("POST", S, {"query": None}, None, 422, "invalid_request"),
    ("POST", S, {"query": QUESTION, "queries": [QUESTION]}, None, 422, "invalid_request"),
    ("POST", S, {"k": 3}, None, 422, "invalid_request"),
    ("POST", S, {"queries": QUESTION}, None, 422, "invalid_request"),
    ("POST", S, {"queries": []}, None, 422, "invalid_argument"),
    ("POST", S, {"queries": [QUESTION] * 300}, None, 422, "too_large"),
    ("POST", S, {"queries": [QUESTION, 7]}, None, 422, "invalid_request"),
    ("POST", S, {"queries": [QUESTION, ""]}, None, 422, "invalid_argument"),
    ("POST", S, {"query": QUESTION, "topk": 5}, None, 422, "invalid_request"),
    ("POST", S, {"query": QUESTION, "filter": "topic"}, None, 422, "invalid_request"),
    ("POST", S, {"query": QUESTION, "filter": {"topic": {"regex": "c.*"}}}, None, 422, "invalid_argument"),
    ("POST", S, {"query": QUESTION, "nprobe": 4}, None, 422, "invalid_argument"),  # an exact index
    ("POST", S, {"query": QUESTION, "mode": "fuzzy"}, None, 422, "invalid_request"),
    ("POST", S, {"queries": [QUESTION], "explain": True}, None, 422, "invalid_request"),
    ("POST", "/indexes/nope/search", {"query": QUESTION}, None, 404, "index_not_found"),
    ("POST", "/indexes/../etc/passwd", {"query": QUESTION}, None, 404, "not_found"),
    ("POST", "/indexes/..%2F..%2Fetc/search", {"query": QUESTION}, None, 404, "not_found"),
    ("POST", "/indexes/%2e%2e/search", {"query": QUESTION}, None, 404, "index_not_found"),
    ("GET", "/static/../served.py", None, None, 404, "not_found"),
    ("GET", "/static/..%2F..%2Fserver%2Fserved.py", None, None, 404, "not_found"),
    ("GET", "/static/%2e%2e/app.py", None, None, 404, "not_found"),
    ("PUT", S, {"query": QUESTION}, None, 405, "method_not_allowed"),
    ("GET", "/no/such/route", None, None, 404, "not_found"),
    ("GET", "/indexes/demo/documents/no-such-id", None, None, 404, "not_found"),
    ("GET", "/indexes/demo/documents/capital-france?embeddings=maybe", None, None, 422, "invalid_request"),
    ("POST", "/indexes/demo/explain", {"query": QUESTION, "id": "no-such-id"}, None, 404, "not_found"),
    ("POST", "/indexes/demo/explain", {"query": QUESTION}, None, 422, "invalid_request"),
    ("POST", "/indexes/demo/explain", {"query": "", "id": "capital-france"}, None, 422, "invalid_argument"),
    ("POST", D, {"texts": "one string"}, None, 422, "invalid_request"),
    ("POST", D, {"texts": [""]}, None, 422, "invalid_argument"),
    ("POST", D, {"texts": ["a b", "c d"], "ids": ["only-one"]}, None, 422, "invalid_argument"),
    ("POST", D, {"texts": ["a b", "c d"], "ids": ["same", "same"]}, None, 422, "invalid_argument"),
    ("POST", D, {"texts": ["a b"], "ids": ["capital-france"]}, None, 422, "invalid_argument"),  # exists
    ("POST", D, {"texts": ["a b"], "ids": [""]}, None, 422, "invalid_argument"),
    ("POST", D, {"texts": ["a b"], "metadata": ["not an object"]}, None, 422, "invalid_request"),
    ("POST", D, b'{"texts": ["a b"], "metadata": [{"x": NaN}]}', JSON, 422, "invalid_argument"),
    ("POST", D, {"texts": ["a b"], "upsert": "yes"}, None, 422, "invalid_request"),
    ("DELETE", D, {"ids": ["capital-france", "no-such-id"]}, None, 404, "not_found"),
    ("DELETE", D, {"ids": "capital-france"}, None, 422, "invalid_request"),
    ("DELETE", D, None, None, 422, "invalid_request"),
    ("POST", "/encode", {"texts": ["hello"], "kind": "image", "index": "demo"}, None, 422, "invalid_request"),
    ("POST", "/encode", {"texts": ["hello"], "index": "nope"}, None, 404, "index_not_found"),
    ("POST", "/encode", {"texts": ["hello"] * 300, "index": "demo"}, None, 422, "too_large"),
    ("POST", "/encode", {"texts": [], "index": "demo"}, None, 422, "invalid_argument"),
    ("POST", S, b"{}", {**JSON, "Content-Length": str(64 << 20)}, 413, "too_large"),
]


def test_malformed_requests_get_their_4xx(server):
    assert len(CASES) >= 30
    before = server.request("GET", "/health")[2]["indexes"]
    failures = []
    for method, path, body, headers, status, code in CASES:
        got, _, out = server.request(method, path, body, headers)
        error = out.get("error", {}) if isinstance(out, dict) else {}
        if got != status or error.get("code") != code or not error.get("message"):
            failures.append(f"{method} {path} {str(body)[:60]}: {got} {out!s:.300}")
    assert not failures, "\n".join(failures)
    # still healthy, nothing written, and a good request still works
    status, _, health = server.request("GET", "/health")
    assert status == 200 and health["indexes"] == before
    status, _, out = server.request("POST", S, {"query": QUESTION, "k": 1})
    assert status == 200 and out["hits"][0]["id"] == "capital-france"


@pytest.mark.parametrize(
    "garbage", [b"GARBAGE\r\n\r\n", b"POST /health HTTP/1.1\r\nContent-Length: x\r\n\r\n"]
)
def test_broken_http_is_refused(server, garbage):
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(garbage)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 4"), answer[:100]
    assert server.request("GET", "/health")[0] == 200
