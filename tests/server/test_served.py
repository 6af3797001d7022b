"""The server's per-index machinery without HTTP: the write queue's bound, reloads that skip while
a write of this server runs, and the lock of another process answered as 409 over HTTP."""

from __future__ import annotations

import threading

import pytest
from colmax.index import Index
from colmax.index.lock import WriterLock
from colmax.server.errors import ApiError
from colmax.server.served import Registry, ServedIndex, check_name


def test_a_full_write_queue_answers_busy(tmp_path):
    index = Index.create(tmp_path / "ix", dim=4)
    served = ServedIndex("ix", index, max_pending_writes=2)
    release = threading.Event()
    try:
        first = served.submit_write(lambda ix: release.wait(30))
        second = served.submit_write(lambda ix: "queued")
        with pytest.raises(ApiError, match="too many writes are queued") as error:
            served.submit_write(lambda ix: "refused")
        assert error.value.status == 503 and error.value.code == "busy"
        release.set()
        assert first.result(30) is True and second.result(30) == "queued"
        assert served.submit_write(lambda ix: "room again").result(30) == "room again"
    finally:
        release.set()
        served.close()


def test_refresh_moves_to_other_commits_but_not_during_its_own_write(tmp_path):
    import numpy as np

    Index.create(tmp_path / "ix", dim=4).close()
    served = ServedIndex("ix", Index.open(tmp_path / "ix"), max_pending_writes=4)
    writing, release = threading.Event(), threading.Event()

    def slow_write(ix):
        writing.set()
        release.wait(30)

    try:
        with Index.open(tmp_path / "ix") as other:
            other.add_embeddings([np.ones((2, 4), np.float32)], ["a"])
        future = served.submit_write(slow_write)
        assert writing.wait(30)
        served.refresh()  # skipped: the write holds the index
        assert served.index.generation == 0
        release.set()
        future.result(30)
        served.refresh()
        assert served.index.generation == 1 and len(served.index) == 1
    finally:
        release.set()
        served.close()


def test_names():
    for good in ("demo", "my-index", "a.b_c", "v2"):
        assert check_name(good) == good
    for bad in ("", ".", "..", ".hidden", "a/b", "a b", "x" * 101, "ü"):
        with pytest.raises(ValueError, match="NAME=PATH"):
            check_name(bad)
    with pytest.raises(ValueError, match="at least one"):
        Registry({})


def test_another_writer_holding_the_lock_is_a_409(server, scratch_path):
    with WriterLock(scratch_path):  # as `colmax index` adding to the same directory would
        status, _, out = server.request("POST", "/indexes/scratch/documents", {"texts": ["blocked"]})
    assert status == 409 and out["error"]["code"] == "index_locked"
    assert "retry" in out["error"]["message"]
    status, _, out = server.request(
        "POST", "/indexes/scratch/documents", {"texts": ["now it goes"], "ids": ["l"]}
    )
    assert status == 200
    assert server.request("DELETE", "/indexes/scratch/documents", {"ids": ["l"]})[0] == 200
