"""What the LangChain and LlamaIndex adapters share, free of any framework: the error for a
missing extra, checks of their settings, the search call, the text each hit must carry, and
exact MaxSim ranking of free texts for the rerankers."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .._validate import one_text, positive_int, text_list
from ..encoding.encoder import load_encoder
from ..index.filters import compile_filter
from ..index.hybrid import MODES
from ..index.types import Hit
from ..scoring import maxsim_topk


def missing_framework(module: str, package: str, extra: str, error: ImportError) -> ImportError:
    """The ImportError for a framework that cannot be imported: it names the extra to install."""
    return ImportError(f'{module} needs {package}: pip install "colmax[{extra}]" (import failed: {error})')


def searchable(index):
    """``index`` itself if it searches like a ``colmax.Index``; local and sharded indexes and
    remote clients share ``search(query, k, filter=..., mode=...)``, which is all the retrievers
    call."""
    if index is None:
        raise TypeError("index is missing: pass index=colmax.Index.open(path) (or a colmax.Client)")
    if isinstance(index, (str, bytes, os.PathLike)):
        raise TypeError(f"index must be an open index, not a path: pass colmax.Index.open({str(index)!r})")
    if not callable(getattr(index, "search", None)):
        raise TypeError(f"index must be a colmax.Index, ShardedIndex or Client, got {type(index).__name__}")
    return index


def checked_filter(filter):
    """A metadata filter (``{"field": value, "other": {"in": [a, b]}}``) or None, checked when
    the retriever is built rather than at its first query."""
    if filter is not None:
        compile_filter(filter)
    return filter


def checked_mode(mode) -> str | None:
    """A search mode ("semantic", "keyword", "hybrid") or None (the index's default), checked
    when the retriever is built."""
    if mode is not None and mode not in MODES:
        raise ValueError(
            f"mode must be one of {', '.join(MODES)} (or None for the index's default), got {mode!r}"
        )
    return mode


def side_scores(hit: Hit) -> dict[str, float]:
    """The hit's MaxSim and BM25 where the search computed them (both for hybrid searches), as
    ``semantic_score`` and ``keyword_score``: what the retrievers add to a document's metadata."""
    sides = {"semantic_score": hit.semantic_score, "keyword_score": hit.keyword_score}
    return {name: value for name, value in sides.items() if value is not None}


def optional_count(name: str, value) -> int | None:
    """None (everything) or an int >= 1."""
    return None if value is None else positive_int(name, value)


def search(index, query: str, k: int, filter, mode) -> list[Hit]:
    """``index.search`` with a retriever's settings, all by keyword (as a local Index, a
    ShardedIndex and a remote Client all take them; None keeps the index's defaults)."""
    return index.search(query, k=k, filter=filter, mode=mode)


def hit_text(hit: Hit) -> str:
    """The stored text of a hit, or a ValueError saying why there is none."""
    if hit.text is None:
        raise ValueError(
            f"document {hit.id!r} has no stored text (added with add_embeddings, as every document "
            "of an embeddings-only index is): a retriever returns texts, so add documents with "
            "Index.add(texts), or search token matrices with Index.search directly"
        )
    return hit.text


class TextRanker:
    """Exact MaxSim of a query against given texts, both encoded on the spot by one model:
    None (the packaged default), a model directory, or an Encoder (e.g. ``index.encoder``)."""

    def __init__(self, model=None) -> None:
        self.encoder = load_encoder(model)

    def rank(self, query: str, texts: Sequence[str], top_n: int | None) -> list[tuple[int, float]]:
        """``(position in texts, score)`` of the ``top_n`` best texts (all when None), best first;
        equal scores keep the texts' order."""
        if not texts:
            return []
        q = self.encoder.encode_queries([one_text(query, "the query")])[0]
        docs = self.encoder.encode_documents(text_list(texts, "the documents' texts"))
        order, scores = maxsim_topk(q, docs, k=len(texts) if top_n is None else top_n)
        return list(zip(order.tolist(), scores.tolist()))
