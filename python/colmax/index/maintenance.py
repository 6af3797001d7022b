"""Looking after a commit's files: full verification, warming the page cache, facts for `colmax info`."""

from __future__ import annotations

from . import keyword
from .codebook import Codebook
from .errors import IndexFormatError
from .files import missing, read_chunks
from .manifest import FORMAT_VERSION
from .segments import verify_segment
from .snapshot import Snapshot


def verify(snap: Snapshot) -> None:
    """Hash every file against the manifest and check the store (IndexFormatError if damaged)."""
    m = snap.manifest
    if m.trained:
        Codebook.load(snap.path, m.codebook, m.dim)
    for seg in m.segments:
        verify_segment(snap.path, seg)
    (result,) = snap.store.conn.execute("PRAGMA integrity_check").fetchone()
    if result != "ok":
        raise IndexFormatError(f"the document store {m.store} is damaged: {result}")
    problem = keyword.check(snap.store.conn) if m.keyword else None
    if problem:
        raise IndexFormatError(f"the document store {m.store} is damaged: {problem}")
    visible = len(snap.store.live_ids(m.generation))
    if visible != m.n_live:
        raise IndexFormatError(f"the store holds {visible} live documents, the manifest says {m.n_live}")


def warm(snap: Snapshot) -> int:
    """Read every file of the commit once, front to back; return the bytes read."""
    total = 0
    for name in sorted(snap.manifest.files()):
        try:
            total += sum(len(chunk) for chunk in read_chunks(snap.path / name))
        except FileNotFoundError:
            raise missing(snap.path, name) from None
    return total


def info(snap: Snapshot) -> dict:
    """Facts about the index, as shown by ``colmax info INDEX``."""
    m, path = snap.manifest, snap.path
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    # per token: its full-precision copy, packed residual and share of its document's codes
    stored = sum(
        (path / s.file(kind)).stat().st_size
        for s in m.segments
        for kind in ("tokens", "scales", "residuals", "doc_codes")
        if kind in s.files
    )
    cb = snap.codebook
    plaid = {}
    if m.kind == "plaid":
        plaid = {
            "nbits": m.codebook["nbits"],
            "centroids": cb.n_centroids if cb else None,
            "codebook_trained_tokens": cb.trained_tokens if cb else None,
        }
    return {
        "path": str(path),
        "format_version": FORMAT_VERSION,
        "created_with": m.created_with,
        "generation": m.generation,
        "model": m.model.get("name") or "(none: embeddings only)",
        "model_path": m.model.get("path") or ("packaged default" if m.model.get("default") else None),
        "kind": m.kind,
        "dim": m.dim,
        "storage": m.storage,
        **plaid,
        "keyword_index": m.keyword,
        "documents": m.n_live,
        "deleted": m.next_pos - m.n_live,
        "segments": len(m.segments),
        "tokens": m.n_tokens,
        "bytes_per_token": round(stored / m.n_tokens, 2) if m.n_tokens else None,
        "size_on_disk": size,
    }
