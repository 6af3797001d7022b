"""The server's guards over real HTTP: API key, body cap, CORS only when asked, loopback by
default, index names only from the command line."""

from __future__ import annotations

import colmax
import pytest
from colmax.cli.main import build_parser
from serving import API_KEY, QUESTION

SEARCH = {"query": QUESTION, "k": 2}


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/indexes", None),
        ("GET", "/indexes/demo", None),
        ("POST", "/indexes/demo/search", SEARCH),
        ("POST", "/indexes/demo/explain", {"query": QUESTION, "id": "capital-france"}),
        ("GET", "/indexes/demo/documents/capital-france", None),
        ("POST", "/indexes/demo/documents", {"texts": ["x y z"]}),
        ("DELETE", "/indexes/demo/documents", {"ids": ["capital-france"]}),
        ("POST", "/encode", {"texts": ["hello"]}),
        ("POST", "/indexes/nope/search", SEARCH),  # no hint of which names exist without the key
    ],
)
def test_every_data_route_needs_the_key(keyed_server, method, path, body):
    for headers in (
        {},
        bearer("wrong"),
        bearer(API_KEY[:-1]),
        bearer(API_KEY + "x"),
        {"Authorization": API_KEY},
    ):
        status, response_headers, out = keyed_server.request(method, path, body, headers)
        assert status == 401, (headers, out)
        assert out["error"]["code"] == "unauthorized" and "Bearer" in out["error"]["message"]
        assert response_headers["www-authenticate"] == "Bearer"


def test_the_key_opens_and_health_needs_none(keyed_server):
    status, _, body = keyed_server.request("GET", "/health")
    assert status == 200 and body["indexes"]["demo"]["documents"] > 0
    status, _, body = keyed_server.request("POST", "/indexes/demo/search", SEARCH, bearer(API_KEY))
    assert status == 200 and body["hits"][0]["id"] == "capital-france"
    client = colmax.Client(keyed_server.url, api_key=API_KEY)
    assert client.search(QUESTION, k=1)[0].id == "capital-france"
    with pytest.raises(PermissionError, match="wrong API key") as error:
        colmax.Client(keyed_server.url, index="demo", api_key="nope").search(QUESTION)
    assert error.value.status == 401
    # the page and the API's description hold no data: a browser loads them, then sends the key
    for path in ("/", "/static/app.js", "/openapi.json"):
        assert keyed_server.request("GET", path)[0] == 200


def test_body_cap(keyed_server):
    big = {"texts": ["word " * 1000] * 300}  # about 1.5 MB, over the 1 MiB cap
    status, _, out = keyed_server.request("POST", "/indexes/demo/documents", big, bearer(API_KEY))
    assert status == 413 and out["error"]["code"] == "too_large" and str(2**20) in out["error"]["message"]
    # announced too large: refused before the body is read
    headers = {**bearer(API_KEY), "Content-Length": str(50 << 20), "Content-Type": "application/json"}
    status, _, out = keyed_server.request("POST", "/indexes/demo/search", b"{}", headers)
    assert status == 413
    assert len(colmax.Client(keyed_server.url, api_key=API_KEY)) == 38  # nothing was added


def test_cors_only_when_asked(keyed_server, server):
    origin = {"Origin": "http://allowed.example"}
    _, headers, _ = keyed_server.request("GET", "/health", headers=origin)
    assert headers["access-control-allow-origin"] == "http://allowed.example"
    # a browser's preflight carries no key; it is answered without one
    preflight = {
        **origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    status, headers, _ = keyed_server.request("OPTIONS", "/indexes/demo/search", headers=preflight)
    assert status == 200 and headers["access-control-allow-origin"] == "http://allowed.example"
    _, headers, _ = keyed_server.request("GET", "/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in headers
    _, headers, _ = server.request("GET", "/health", headers=origin)  # started without --cors
    assert "access-control-allow-origin" not in headers


def test_loopback_by_default():
    args = build_parser().parse_args(["serve", "some-index"])
    assert args.host == "127.0.0.1" and args.cors == []


def test_only_command_line_indexes_are_reachable(server, demo_path):
    # a name is looked up among those given to `colmax serve`, never resolved as a path
    for name in ("..", "%2e%2e", "..%2Fdemo", str(demo_path).replace("/", "%2F"), "demo%00", "DEMO"):
        status, _, out = server.request("POST", f"/indexes/{name}/search", SEARCH)
        assert status == 404, (name, out)
