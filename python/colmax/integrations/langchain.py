"""LangChain adapters (extra ``colmax[langchain]``): ``ColmaxRetriever`` over an index and
``ColmaxReranker``, a document compressor scoring by exact MaxSim (docs/integrations.md)."""

from collections.abc import Sequence
from typing import Any, Optional

from .._validate import positive_int
from . import common

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun, Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import field_validator

    from .reranker_fields import RerankerFields
except ImportError as error:
    raise common.missing_framework(__name__, "langchain-core", "langchain", error) from error

# No `from __future__ import annotations` here: pydantic evaluates the field annotations, and
# `X | None` cannot be evaluated before Python 3.10.


class ColmaxRetriever(BaseRetriever):
    """The ``k`` best documents of a colmax index for a query, best first.

    ``index`` is an open ``colmax.Index`` (or a ``colmax.ShardedIndex``, or a ``colmax.Client``
    of a server: anything with the same ``search``); ``filter`` a colmax metadata filter
    (``{"lang": "en", "year": {"in": [2023, 2024]}}``); ``mode`` "semantic", "keyword" or
    "hybrid" (None: the index's default, hybrid for an index with texts). Each ``Document`` has
    the stored text as ``page_content``, the hit's id as ``id``, and metadata = the document's
    metadata plus ``id``, ``score`` (what the search ranked by: the fused score of a hybrid
    search, MaxSim or BM25 of the others) and, where the search computed them,
    ``semantic_score`` (MaxSim) and ``keyword_score`` (BM25); these replace same-named metadata
    fields. Results are exactly ``index.search(query, k, filter=filter, mode=mode)``.
    ``ainvoke`` runs the search on a worker thread: the index releases the GIL while it scores,
    so the event loop keeps running.
    """

    index: Any
    k: int = 4
    filter: Optional[dict] = None
    mode: Optional[str] = None

    @field_validator("index", mode="before")
    @classmethod
    def _index(cls, value):
        return common.searchable(value)

    @field_validator("k", mode="before")
    @classmethod
    def _k(cls, value):
        return positive_int("k", value)

    @field_validator("filter", mode="before")
    @classmethod
    def _filter(cls, value):
        return common.checked_filter(value)

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value):
        return common.checked_mode(value)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(
                page_content=common.hit_text(hit),
                metadata={**hit.metadata, "id": hit.id, "score": hit.score, **common.side_scores(hit)},
                id=hit.id,
            )
            for hit in common.search(self.index, query, self.k, self.filter, self.mode)
        ]


class ColmaxReranker(RerankerFields, BaseDocumentCompressor):
    """Reorders documents by exact MaxSim against the query and keeps the ``top_n`` best (all when
    None); each returned copy carries its score in ``metadata["relevance_score"]``.

    The query and the documents' ``page_content`` are encoded on the spot by ``model``: None for
    the packaged default, a model directory, or an Encoder (pass ``index.encoder`` to score with
    an index's model). No index is needed; equal scores keep the input order.
    """

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks = None
    ) -> Sequence[Document]:
        return [
            documents[i].model_copy(update={"metadata": {**documents[i].metadata, "relevance_score": s}})
            for i, s in self.ranked(query, [d.page_content for d in documents])
        ]
