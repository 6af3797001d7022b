"""Real servers for the server tests, started and stopped by fixtures (serving.py has the
helpers): one serving a read-only demo index and a scratch index, one with an API key."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")  # CI installs the extra (scripts/test.sh): these tests run there
pytest.importorskip("uvicorn")

from serving import API_KEY, Server, build_demo_index


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory):
    """Read-only: tests compare the server's answers with this index opened in-process."""
    return build_demo_index(tmp_path_factory.mktemp("demo") / "demo")


@pytest.fixture(scope="session")
def scratch_path(tmp_path_factory):
    """For tests that write; each uses ids of its own."""
    return build_demo_index(tmp_path_factory.mktemp("scratch") / "scratch")


@pytest.fixture(scope="session")
def server(tmp_path_factory, demo_path, scratch_path):
    """Serves 'demo' and 'scratch', no key, no CORS."""
    srv = Server(tmp_path_factory.mktemp("server"), f"demo={demo_path}", f"scratch={scratch_path}")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory, demo_path):
    """Serves the demo index alone, with an API key, CORS for one origin and a 1 MiB body cap."""
    srv = Server(
        tmp_path_factory.mktemp("keyed"),
        str(demo_path),
        "--api-key",
        API_KEY,
        "--cors",
        "http://allowed.example",
        "--max-body-mb",
        "1",
    )
    srv.start()
    yield srv
    srv.stop()
