"""LlamaIndex adapters (extra ``colmax[llama-index]``): ``ColmaxRetriever`` over an index, with
LlamaIndex metadata filters translated to colmax filters, and ``ColmaxRerank``, a node
postprocessor scoring by exact MaxSim (docs/integrations.md)."""

import asyncio
from collections.abc import Mapping
from typing import Optional

from .._validate import positive_int
from . import common

try:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.constants import DEFAULT_SIMILARITY_TOP_K
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
    from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilters
    from pydantic import Field

    from .reranker_fields import RerankerFields
except ImportError as error:
    raise common.missing_framework(__name__, "llama-index-core", "llama-index", error) from error

# No `from __future__ import annotations` here: pydantic evaluates the field annotations, and
# `X | None` cannot be evaluated before Python 3.10.


def _refuse(what: str) -> ValueError:
    return ValueError(
        f"{what} has no colmax equivalent: colmax filters take == (FilterOperator.EQ) and in "
        "(FilterOperator.IN) conditions, ANDed across distinct keys and ORed only between values "
        "of one key; filter the retrieved nodes yourself for the rest"
    )


def _allowed_values(filters: MetadataFilters) -> dict[str, list]:
    """{key: values any of which may match}: the keys ANDed, the values of one key ORed."""
    condition = filters.condition or FilterCondition.AND
    if condition not in (FilterCondition.AND, FilterCondition.OR):
        raise _refuse(f"condition {condition.value!r}")
    parts = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            parts.append(_allowed_values(f))
        elif f.operator == FilterOperator.EQ and isinstance(f.value, (str, int, float)):
            parts.append({f.key: [f.value]})
        elif f.operator == FilterOperator.IN and isinstance(f.value, list):
            parts.append({f.key: list(f.value)})
        elif f.operator in (FilterOperator.EQ, FilterOperator.IN):
            # LlamaIndex's own stores read `== None` as "missing or null", colmax's None as an
            # explicit null only: a translation would change the meaning, so none is made
            raise _refuse(f"{f.key!r} {f.operator.value} {f.value!r} (== takes one value, in a list)")
        else:
            raise _refuse(f"operator {f.operator.value!r} (on {f.key!r})")
    out: dict[str, list] = {}
    if condition == FilterCondition.OR:
        keys = {key for part in parts for key in part}
        if len(keys) > 1 or any(len(part) > 1 for part in parts):
            raise _refuse(f"OR across different keys ({', '.join(sorted(map(repr, keys)))})")
        for part in parts:
            for key, values in part.items():
                out.setdefault(key, []).extend(values)
        return out
    for part in parts:
        for key, values in part.items():
            if key in out:
                raise _refuse(f"two conditions on {key!r} under AND (merge them into one 'in')")
            out[key] = values
    return out


def colmax_filter(filters) -> Optional[dict]:
    """A colmax filter from LlamaIndex ``MetadataFilters`` (a dict is taken as a colmax filter
    already, None as no filter); ValueError for conditions colmax cannot express."""
    if filters is None or isinstance(filters, Mapping):
        return common.checked_filter(filters)
    if not isinstance(filters, MetadataFilters):
        raise TypeError(
            "filters must be LlamaIndex MetadataFilters or a colmax filter dict, "
            f"got {type(filters).__name__}"
        )
    allowed = _allowed_values(filters)
    spec = {key: v[0] if len(v) == 1 else {"in": v} for key, v in allowed.items()}
    return common.checked_filter(spec) if spec else None


def _node(hit) -> NodeWithScore:
    sides = common.side_scores(hit)
    node = TextNode(
        id_=hit.id,
        text=common.hit_text(hit),
        metadata={**hit.metadata, **sides},
        # the scores describe the search, not the document: kept out of what an LLM or an
        # embedding model is shown of the node
        excluded_llm_metadata_keys=list(sides),
        excluded_embed_metadata_keys=list(sides),
    )
    return NodeWithScore(node=node, score=hit.score)


class ColmaxRetriever(BaseRetriever):
    """The ``similarity_top_k`` best nodes of a colmax index for a query, best first.

    ``index`` is an open ``colmax.Index`` (or a ``colmax.ShardedIndex``, or a ``colmax.Client``
    of a server: anything with the same ``search``). ``filters`` are LlamaIndex
    ``MetadataFilters`` (== and in conditions, ANDed across keys or ORed within one key;
    anything else raises ValueError here, never silently ignored) or a colmax filter dict;
    ``mode`` "semantic", "keyword" or "hybrid" (None: the index's default, hybrid for an index
    with texts). Each ``NodeWithScore`` holds a ``TextNode`` (the stored text, the hit's id as
    ``id_``, the document's metadata plus, where the search computed them, ``semantic_score``
    (MaxSim) and ``keyword_score`` (BM25), which replace same-named fields and are excluded
    from what an LLM or embedding model sees of the node) and the score the search ranked by
    (fused for hybrid): exactly ``index.search(query, k, filter=..., mode=mode)``.
    """

    def __init__(
        self,
        index,
        similarity_top_k: int = DEFAULT_SIMILARITY_TOP_K,
        *,
        filters=None,
        mode: Optional[str] = None,
        callback_manager: Optional[CallbackManager] = None,
        verbose: bool = False,
    ) -> None:
        self.index = common.searchable(index)
        self.similarity_top_k = positive_int("similarity_top_k", similarity_top_k)
        self.filter = colmax_filter(filters)
        self.mode = common.checked_mode(mode)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query, k = query_bundle.query_str, self.similarity_top_k
        return [_node(hit) for hit in common.search(self.index, query, k, self.filter, self.mode)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # the base class would search on the event loop's thread; the index releases the GIL
        # while it scores, so a worker thread keeps the loop running
        return await asyncio.to_thread(self._retrieve, query_bundle)


class ColmaxRerank(RerankerFields, BaseNodePostprocessor):
    """Reorders nodes by exact MaxSim against the query and keeps the ``top_n`` best (all when
    None), each with its MaxSim score as ``score``.

    The query and each node's text are encoded on the spot by ``model``: None for the packaged
    default, a model directory, or an Encoder (pass ``index.encoder`` to score with an index's
    model). No index is needed; equal scores keep the input order; nodes are not modified.
    """

    top_n: Optional[int] = Field(default=2, description="how many to keep, best first (None: all)")

    @classmethod
    def class_name(cls) -> str:
        return "ColmaxRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: Optional[QueryBundle] = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("ColmaxRerank needs the query: pass query_str= (or query_bundle=)")
        texts = [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        ranked = self.ranked(query_bundle.query_str, texts)
        return [NodeWithScore(node=nodes[i].node, score=score) for i, score in ranked]
