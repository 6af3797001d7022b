"""Integrity: a single flipped byte in any file an index commit names is found by Index.verify
and `colmax verify`, the store's rows included (their CRC catches what SQLite's own check does
not), and a compaction never gives a damaged row a fresh checksum."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
from colmax.cli import main
from colmax.index import Index, IndexFormatError, integrity
from colmax.index.files import MANIFEST

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from old_formats import downgrade_to_format_4
from tiny_checkpoints import WORDS, tiny_model

MARKER = "quokka"  # a word of no other stored field


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny")


def texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 120)))) for _ in range(n)]


def build(path: Path, model, kind: str) -> Index:
    options = {"n_centroids": 8} if kind == "plaid" else {}
    index = Index.create(path, model, kind=kind, **options)
    corpus = texts(40, seed=3)
    corpus[7] += f" {MARKER} was here"
    ids = [f"a{i:02d}" for i in range(40)]
    ids[-1] = "zz-last"  # the largest id, so that renaming it keeps SQLite's indexes in order
    metas = [{"title": f"title {i}"} for i in range(40)]
    metas[5] = {"title": f"the {MARKER} title"}
    index.add(corpus[:20], ids[:20], metas[:20])
    index.add(corpus[20:], ids[20:], metas[20:])
    index.delete(["a03"])
    return index


def flip(path: Path, offsets, mask: int = 0x01) -> bytes:
    """Flip bits of the bytes at ``offsets``; return the file's previous content."""
    good = path.read_bytes()
    damaged = bytearray(good)
    for offset in offsets:
        damaged[offset] ^= mask
    path.write_bytes(bytes(damaged))
    return good


def sqlite_says_ok(store: Path) -> bool:
    conn = sqlite3.connect(store)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def verify_cli(capsys, path: Path) -> tuple[int, str]:
    code = main(["verify", str(path)])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize(
    "needle, mask",
    [
        pytest.param(f"{MARKER} was".encode(), 0x01, id="text"),  # still UTF-8, same length
        pytest.param(f"{MARKER} was".encode(), 0x80, id="text-not-utf8"),
        pytest.param(f"the {MARKER} title".encode(), 0x02, id="meta"),
    ],
)
def test_a_flipped_byte_in_a_row_is_found(model, tmp_path, capsys, needle, mask):
    path = tmp_path / "ix"
    build(path, model, "exact").close()
    store = path / json.loads((path / MANIFEST).read_text())["store"]
    content = store.read_bytes()
    assert content.count(needle) >= 1  # metadata is on every passage: damage the first
    good = flip(store, [content.index(needle) + 2], mask)
    assert sqlite_says_ok(store)  # SQLite does not look inside its records
    index = Index.open(path, verify=False)
    with pytest.raises(IndexFormatError, match=rf"{store.name}: damaged: 1 rows do not match"):
        index.verify()
    code, output = verify_cli(capsys, path)
    assert code == 1 and f"{store.name}: damaged: 1 rows do not match their checksum" in output
    with pytest.raises(IndexFormatError, match="does not match its checksum"):
        index.compact()  # a rewrite would give the damaged row a fresh, valid CRC
    index.close()
    store.write_bytes(good)
    assert Index.open(path, verify=True).verify()["files"] > 0
    assert verify_cli(capsys, path)[0] == 0


def test_a_renamed_id_is_found_where_sqlite_sees_nothing(model, tmp_path, capsys):
    """The id in the row and in both of SQLite's indexes on it, changed alike: a consistent file
    to SQLite, a damaged row to its CRC."""
    path = tmp_path / "ix"
    build(path, model, "exact").close()
    store = path / json.loads((path / MANIFEST).read_text())["store"]
    content = store.read_bytes()
    start, places = 0, []
    while (found := content.find(b"zz-last", start)) >= 0:
        places.append(found + len("zz-las"))
        start = found + 1
    assert len(places) >= 3  # the row, docs_id, docs_live_id
    flip(store, places)  # "zz-lasu": still the largest id
    assert sqlite_says_ok(store)
    code, output = verify_cli(capsys, path)
    assert code == 1 and f"{store.name}: damaged: " in output and "rows do not match" in output


@pytest.mark.parametrize("kind", ["exact", "plaid"])
def test_a_flipped_byte_anywhere_in_every_file_kind_is_found(model, tmp_path, capsys, kind):
    path = tmp_path / kind
    index = build(path, model, kind)
    m = index._snap.manifest
    index.close()
    files = integrity.checksummed(m)
    kinds = {name.rsplit(".", 1)[1] for name in files}
    assert kinds >= ({"tokens", "offsets"} if kind == "exact" else {"residuals", "centroids"})
    rng = np.random.default_rng(11)
    for name in sorted(files):
        size = (path / name).stat().st_size
        for offset in rng.integers(0, size, size=3):
            good = flip(path / name, [int(offset)], int(rng.integers(1, 256)))
            _, report = integrity.verify_directory(path)
            assert report.problems == [f"{name}: damaged (checksum mismatch)"], (name, offset)
            (path / name).write_bytes(good)
    code, output = verify_cli(capsys, path)
    assert code == 0 and "is intact" in output


def test_rows_of_an_upgraded_store_carry_no_crc_until_compacted(model, tmp_path):
    """A store written before the CRC column (version 1, upgraded on the first write) keeps its
    old rows unchecked (NULL); rows written since carry one, and compact() gives every row one."""
    path = tmp_path / "v4"
    index = Index.create(path, model)
    index.add(["paris is the capital of france", "berlin is in germany"], ["paris", "berlin"])
    index.close()
    downgrade_to_format_4(path)
    old = Index.open(path)
    old.add(["rome is the capital of italy"], ["rome"])

    def crcs() -> dict[str, int | None]:
        store = path / json.loads((path / MANIFEST).read_text())["store"]
        conn = sqlite3.connect(store)
        try:
            return dict(conn.execute("SELECT id, crc FROM docs"))
        finally:
            conn.close()

    written = crcs()
    assert written["paris"] is None and written["berlin"] is None and written["rome"] is not None
    old.verify()
    old.compact()
    assert None not in crcs().values()
    old.verify()
