"""Why a document scored what it did: each query token's best-matching document token, with the
tokens' text where the model's tokenizer can recover it, and the query terms it holds lexically.
A document split into passages is explained by its best passage by MaxSim."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import _core
from . import keyword
from . import search as semantic_search
from .snapshot import Snapshot
from .types import Explanation
from .write import title


def explain(
    snap: Snapshot, query, q: np.ndarray, id: str, encoder: Callable[[], object], threads=None
) -> Explanation:
    """``q`` is the checked query matrix of ``query`` (a text or a matrix)."""
    positions = snap.passage_positions([id])
    pos = int(positions[0])
    if positions.size > 1:  # the passage MaxSim ranks first (ties: the earlier one)
        pos = int(semantic_search.rerank(snap, q, positions, threads)[0][0])
    d = snap.doc_matrix(pos)
    sims = q @ d.T  # (nq, nd); exact float32, the same products MaxSim takes the max of
    best = sims.argmax(axis=1)
    similarity = sims[np.arange(len(q)), best]
    row = snap.store.rows([pos])[pos]
    query_tokens = doc_tokens = doc_spans = None
    if isinstance(query, str) or row.text:
        query_tokens, doc_tokens, doc_spans = _token_texts(
            snap, encoder, query, row, pos, best, len(q), d.shape[0]
        )
    terms = None
    if isinstance(query, str) and snap.manifest.keyword:
        terms = keyword.matched_terms(snap.store.conn, keyword.query_terms(query), pos)
    return Explanation(
        id,
        float(similarity.sum(dtype=np.float64)),
        similarity,
        best,
        query_tokens,
        doc_tokens,
        doc_spans,
        keyword_terms=terms,
        passage=row.passage,
        span=row.span,
    )


def _token_texts(snap: Snapshot, encoder, query, row, pos: int, best: np.ndarray, nq: int, nd: int):
    """Token strings for an explanation: the query's tokens, and the text and character span (in
    the document's whole text) of each best-matching document token, recomputed by tokenizing
    the stored text as adding did. None where unavailable."""
    try:
        enc = encoder()
    except Exception:  # no model (an embeddings-only index) or a missing one: numbers only
        return None, None, None
    if not hasattr(enc, "encode_passages"):  # an encoder object of the caller's: numbers only
        return None, None, None
    tok = enc.tokenizer
    query_tokens = None
    if isinstance(query, str):
        qids = tok.queries([query]).ids[0]
        if len(qids) == nq:
            query_tokens = [tok.id_to_token(int(i)) or "?" for i in qids]
    doc_tokens = doc_spans = None
    text = row.text
    if text:
        settings = snap.manifest.passages or {}
        titles = [title(row.meta)] if settings.get("titles") else None
        how = {
            "length": settings.get("length"),
            "stride": settings.get("stride"),
            "truncate": row.span is None,
            "titles": titles,
        }
        items, _ = tok.passages([text], **how)
        p = row.passage if row.passage < len(items) else 0
        head = None if titles is None else titles[0]
        keep, spans = items.keep[p], tok.passage_spans(text, how["length"], how["stride"], head)[p]
        kept = items.ids[p][keep]
        order = None
        if len(kept) == nd:
            order = (
                np.arange(nd) if snap.manifest.kind == "exact" else _text_order(snap, enc, pos, text, how, p)
            )
        if order is not None:
            matched = order[best]
            doc_tokens = [tok.id_to_token(int(kept[i])) or "?" for i in matched.tolist()]
            doc_spans = [(int(s), int(e)) if s >= 0 else None for s, e in spans[keep][matched].tolist()]
    return query_tokens, doc_tokens, doc_spans


def _text_order(snap: Snapshot, encoder, pos: int, text: str, how: dict, p: int) -> np.ndarray | None:
    """The text position of each stored token of passage ``pos`` (number ``p`` of ``text`` cut
    ``how``). A plaid index stores a passage's tokens ordered by centroid code; encoding it
    again and sorting the codes as adding did recovers the order, or None where the codes
    differ (another model)."""
    seg, row = snap.locate(pos)
    cb = snap.codebook
    vectors, _ = encoder.encode_passages([text], **how)
    codes, _ = cb.compress(vectors[p], threads=1)
    order, _, _ = _core.plaid_doc_codes(codes, np.array([0, len(codes)]), cb.n_centroids)
    stored = _core.plaid_token_codes(
        seg.doc_codes, seg.doc_code_offsets, seg.offsets, np.array([row]), cb.n_centroids
    )
    return order if np.array_equal(codes[order], stored) else None
