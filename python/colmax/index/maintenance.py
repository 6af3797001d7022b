"""Looking after a commit's files: warming the page cache, facts for `colmax info`
(verification is integrity.py)."""

from __future__ import annotations

from .files import missing, read_chunks
from .integrity import last_verified
from .manifest import FORMAT_VERSION
from .model import describe as describe_model
from .snapshot import Snapshot


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
        **describe_model(m.model),
        "kind": m.kind,
        "dim": m.dim,
        "storage": m.storage,
        **plaid,
        "keyword_index": m.keyword,
        "passage_settings": m.passages,
        "documents": m.n_live,
        "passages": m.next_pos - int(snap.deleted.size),  # live positions: documents' passages
        "deleted": int(snap.deleted.size),  # deleted positions, until compact() removes them
        "segments": len(m.segments),
        "tokens": m.n_tokens,
        "bytes_per_token": round(stored / m.n_tokens, 2) if m.n_tokens else None,
        "size_on_disk": size,
        "last_verified": last_verified(path, m),
    }
