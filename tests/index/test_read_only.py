"""An index this process may only read: every write raises IndexReadOnlyError naming the fix and
changes nothing; searching and verifying work.

The operating system must really refuse the writes, and root ignores permissions: run as root
(as CI does), the writes run in a child process that drops to the unprivileged user ``nobody``
after importing what it needs (the interpreter may live where ``nobody`` cannot read)."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import colmax
import pytest
from colmax.index.files import LOCK, VERIFIED
from tiny_checkpoints import TINY_DOCS, tiny_model

ROOT = os.geteuid() == 0
NOBODY = pwd.getpwnam("nobody") if ROOT else None

WRITES = {
    "add": "index.add(['paris is the capital'], ['new'])",
    "add_embeddings": "index.add_embeddings([np.ones((2, index.dim), np.float32)], ['new'])",
    "delete": "index.delete(['paris'])",
    "update": "index.update('paris', 'berlin is the capital')",
    "compact": "index.compact()",
    "rollback": "index.rollback(1)",  # undo the delete
    "compress": "index.compress()",
}

CHILD = textwrap.dedent(
    """
    import json, os, pkgutil, importlib, sys
    import numpy as np, onnxruntime, colmax
    # everything a write may import, imported while the interpreter's files are readable; onnx
    # and the codecs its parser looks up lazily load when the encoder's graph is fused
    import encodings.raw_unicode_escape, encodings.unicode_escape, onnx
    for package in (colmax.index, colmax.encoding):
        for m in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(m.name)
    if len(sys.argv) > 2:  # drop root's privileges: the kernel checks permissions from here on
        os.setgroups([])
        os.setgid(int(sys.argv[3]))
        os.setuid(int(sys.argv[2]))
    index = colmax.Index.open(sys.argv[1])
    out = {"found": [h.id for h in index.search(np.ones((3, index.dim), np.float32), k=2)]}
    for name, call in json.loads(sys.stdin.read()).items():
        try:
            exec(call)
            out[name] = "written"
        except Exception as e:
            out[name] = [type(e).__name__, str(e)]
    report = index.verify()
    out["verify"] = report["recorded"]
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def shared():
    """A directory the unprivileged user can read (pytest's own are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="colmax-read-only-"))
    os.chmod(root, 0o755)
    tiny_model(root / "model")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
    yield root
    shutil.rmtree(root)


def _index(shared: Path, name: str) -> Path:
    path = shared / name
    index = colmax.Index.create(path, model=shared / "model")
    index.add(list(TINY_DOCS.values()), list(TINY_DOCS))
    index.delete(["what"])  # something for compact to do
    index.close()
    os.chmod(path, 0o755)
    for f in path.iterdir():
        os.chmod(f, 0o644)
    return path


def _restrict(path: Path, what: str) -> None:
    """Make ``what`` ("directory", "files", "both") read-only for the child."""
    files = list(path.iterdir())
    if ROOT:  # give the child (nobody) what stays writable; root keeps the rest
        if what in ("files", "directory"):
            os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
        if what == "directory":
            for f in files:
                os.chown(f, NOBODY.pw_uid, NOBODY.pw_gid)
    if what in ("files", "both"):
        for f in files:
            os.chmod(f, 0o444)
    if what in ("directory", "both"):
        os.chmod(path, 0o555)


def _state(path: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(path.iterdir())}


@pytest.mark.parametrize("what", ["directory", "files", "both"])
def test_writes_to_a_read_only_index_raise_a_clear_error(shared, what):
    path = _index(shared, what)
    _restrict(path, what)
    before = _state(path)
    command = [sys.executable, "-c", CHILD, str(path)]
    if ROOT:
        command += [str(NOBODY.pw_uid), str(NOBODY.pw_gid)]
    run = subprocess.run(command, input=json.dumps(WRITES), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["found"]  # reading works
    for name in WRITES:
        assert isinstance(out[name], list), f"{name} wrote to a read-only index"
        kind, message = out[name]
        assert kind == "IndexReadOnlyError", (name, kind, message)
        assert "is read-only for this process" in message and "need write permission" in message, message
    # verified (a problem would have raised); recorded only where a new file may be written
    assert out["verify"] is (what == "files")
    after = _state(path)
    for name in (VERIFIED, LOCK):  # the verification record; the pid of the last writer to try
        after.pop(name, None)
        before.pop(name, None)
    assert after == before  # nothing written, nothing left behind
    os.chmod(path, 0o755)
    index = colmax.Index.open(path)
    assert sorted(index.ids()) == sorted(set(TINY_DOCS) - {"what"})


def test_index_read_only_error_is_a_permission_error():
    assert issubclass(colmax.IndexReadOnlyError, PermissionError)
