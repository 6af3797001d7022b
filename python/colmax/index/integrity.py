"""Integrity: hashing every file a commit names against the manifest, checking the store, the
record of the last full verification, and which opens verify.

Segment and codebook files never change once committed, so their SHA-256 in the manifest
says whether a single byte moved. Files are hashed in place through memory maps (no copy) on
several threads at once, beside the store's checks (hashlib and SQLite release the GIL). The
store changes with every commit; it is checked by SQLite's own integrity check (pages and
indexes), each row's CRC-32 (its fields), the keyword index's check and the live-document
count (docs/format.md, "Document store").
"""

from __future__ import annotations

import datetime
import hashlib
import json
import mmap
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import keyword
from .errors import IndexFormatError
from .files import MANIFEST, VERIFIED, replace_durably
from .manifest import Manifest, read_manifest
from .store import Store

# Index.open(verify=None) hashes every file when the commit's files hold at most this much:
# SHA-256 ran at 1.4-1.7 GB/s per core here (SHA extensions; benchmarks/bench_integrity.py),
# so at most about 50 ms on top of an open that otherwise takes under a millisecond.
AUTO_VERIFY_BYTES = 64 << 20
_HASH_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass
class Report:
    """What a verification found: the files hashed, their bytes, the time taken, and every
    problem (empty: the index is intact)."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def checksummed(m: Manifest) -> dict[str, str | None]:
    """Every file of commit ``m`` with a SHA-256 in the manifest: name -> expected digest."""
    files = {s.file(kind): digest for s in m.segments for kind, digest in s.files.items()}
    if m.trained:
        files[m.codebook["file"]] = m.codebook.get("sha256")
    return files


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 of a file, read through a memory map (the page cache's pages, no copy)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return hashlib.sha256().hexdigest(), 0
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            if hasattr(mapped, "madvise"):
                mapped.madvise(mmap.MADV_SEQUENTIAL)
            return hashlib.sha256(mapped).hexdigest(), size


def _check_file(directory: Path, name: str, expected: str | None) -> tuple[int, str | None]:
    try:
        digest, size = file_digest(directory / name)
    except FileNotFoundError:
        return 0, f"{name}: missing"
    except OSError as e:
        return 0, f"{name}: unreadable ({e.strerror or e})"
    return size, None if digest == expected else f"{name}: damaged (checksum mismatch)"


def verify_files(directory: Path, files: dict[str, str | None], report: Report) -> None:
    """Hash ``files`` (name -> expected SHA-256), largest first over a few threads; every
    missing, unreadable or damaged one is a problem in ``report``."""
    order = sorted(files, key=lambda n: -_size(directory / n))
    with ThreadPoolExecutor(max_workers=_HASH_THREADS, thread_name_prefix="colmax-verify") as pool:
        for size, problem in pool.map(lambda n: _check_file(directory, n, files[n]), order):
            report.files += 1
            report.bytes += size
            if problem:
                report.problems.append(problem)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def check_store(store: Store, m: Manifest) -> list[str]:
    """The store's problems: SQLite's integrity check (its pages and indexes), every row against
    its CRC, the keyword index against the texts, the live documents against the manifest."""
    name = m.store
    try:
        (result,) = store.conn.execute("PRAGMA integrity_check").fetchone()
        if result != "ok":
            return [f"{name}: damaged ({result})"]
        rows = store.damaged_rows()
        if rows:
            return [
                f"{name}: damaged: {len(rows)} rows do not match their checksum (position {rows[0]} first)"
            ]
        problem = keyword.check(store.conn, store.passages) if m.keyword else None
        if problem:
            return [f"{name}: damaged: {problem}"]
        live = store.count_live(m.generation)
    except sqlite3.OperationalError:
        raise  # locked, read-only: not a verdict on the file
    except sqlite3.DatabaseError as e:
        return [f"{name}: damaged ({e})"]
    if live != m.n_live:
        return [f"{name}: holds {live} live documents, the manifest says {m.n_live}"]
    return []


def verify(directory: Path, m: Manifest, store: Store) -> Report:
    """Every checksum of commit ``m`` and the store's checks, side by side."""
    report = Report()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="colmax-verify-store") as pool:
        store_problems = pool.submit(check_store, store, m)
        verify_files(directory, checksummed(m), report)
        report.problems.extend(store_problems.result())
    report.seconds = time.perf_counter() - t0
    return report


def verify_directory(directory: Path) -> tuple[Manifest | None, Report]:
    """:func:`verify` of the newest commit of the index at ``directory``, opening nothing but
    what it checks, so that every problem is reported, a damaged manifest or store included
    (the manifest None when it cannot be read)."""
    report = Report()
    t0 = time.perf_counter()
    try:
        m = read_manifest(directory)
    except IndexFormatError as e:
        report.problems.append(f"{MANIFEST}: {e}")
        return None, report
    verify_files(directory, checksummed(m), report)
    try:
        store = Store.open(directory / m.store)
    except IndexFormatError as e:
        report.problems.append(f"{m.store}: {e}")
    else:
        try:
            report.problems.extend(check_store(store, m))
        finally:
            store.close()
    report.seconds = time.perf_counter() - t0
    return m, report


def raise_problems(directory: Path, report: Report) -> None:
    if report.problems:
        listed = "; ".join(report.problems)
        raise IndexFormatError(
            f"index {directory} is damaged: {listed} (restore it from a copy, or rebuild it)"
        )


# -- the record of the last verification -----------------------------------------------------


def record(directory: Path, m: Manifest, report: Report) -> bool:
    """Note a successful verification of commit ``m`` in the index directory (for ``colmax
    info``); False where the directory cannot be written (the verification still stands)."""
    body = {
        "verified_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "generation": m.generation,
        "manifest": m.to_json()["checksum"],
        "files": report.files,
        "bytes": report.bytes,
        "seconds": round(report.seconds, 3),
    }
    try:
        replace_durably(directory / VERIFIED, json.dumps(body, indent=1).encode("utf-8"))
    except OSError:
        return False
    return True


def last_verified(directory: Path, m: Manifest) -> dict | None:
    """The last recorded verification, with ``"current"`` True when it was of commit ``m``
    itself; None if there is none (or it cannot be read)."""
    try:
        body = json.loads((directory / VERIFIED).read_text(encoding="utf-8"))
        current = body["manifest"] == m.to_json()["checksum"]
        return {
            "verified_at": str(body["verified_at"]),
            "generation": int(body["generation"]),
            "current": current,
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def open_verifies(verify, directory: Path, m: Manifest) -> bool:
    """Whether ``Index.open(verify=...)`` hashes every file: True and False as given, None
    (the default) when the commit's checksummed files total at most AUTO_VERIFY_BYTES."""
    if verify is None:
        return sum(_size(directory / name) for name in checksummed(m)) <= AUTO_VERIFY_BYTES
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be True, False or None (verify small indexes), got {verify!r}")
    return verify
