"""The JSON bodies of the API: requests as pydantic models (strict types, unknown fields refused,
so a typo is an error rather than a silently ignored option) and responses for the OpenAPI
schema. Caps that depend on the server's settings are checked in ``limits``."""

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

# Optional[...] rather than X | None, and no `from __future__ import annotations`: pydantic
# evaluates these annotations at run time, and colmax supports Python 3.9


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SearchRequest(Request):
    query: Optional[str] = Field(None, description="one query text (or use `queries`)")
    queries: Optional[list[str]] = Field(None, description="several query texts, searched as a batch")
    k: int = Field(10, description="hits per query")
    filter: Optional[dict[str, Any]] = Field(
        None, description='metadata filter, e.g. {"lang": "en", "year": {"in": [2020, 2021]}}'
    )
    mode: Optional[Literal["semantic", "keyword", "hybrid"]] = Field(
        None,
        description="semantic (MaxSim), keyword (BM25) or hybrid (both, fused); default: hybrid for an "
        "index whose keyword index holds texts, else semantic",
    )
    alpha: Optional[float] = Field(
        None,
        description="hybrid: the weight of MaxSim in the fused score, 0 to 1 "
        "(default 0.7 with minmax fusion, 0.5 with rrf)",
    )
    fusion: Optional[Literal["minmax", "rrf"]] = Field(
        None, description="hybrid: min-max normalized scores (default) or reciprocal-rank fusion"
    )
    exact: Optional[bool] = Field(None, description="plaid indexes: score every document exactly")
    nprobe: Optional[int] = Field(None, description="plaid indexes: centroids probed per query token")
    ncandidates: Optional[int] = Field(None, description="plaid indexes: documents scored exactly")
    explain: bool = Field(
        False, description="with `query`: add each hit's explanation (as from /explain) under `explanation`"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"query": "What is the capital of France?", "k": 3},
                {"query": "What is the capital of France?", "k": 3, "mode": "hybrid", "alpha": 0.7},
            ]
        }
    )


class ExplainRequest(Request):
    query: str
    id: str

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"query": "What is the capital of France?", "id": "paris"}]}
    )


class AddRequest(Request):
    texts: list[str]
    ids: Optional[list[str]] = Field(None, description="one per text; generated when absent")
    metadata: Optional[list[Optional[dict[str, Any]]]] = Field(
        None, description="one object (or null) per text"
    )
    upsert: bool = Field(False, description="replace documents whose id is already in the index")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"texts": ["Rome is the capital of Italy."], "ids": ["rome"], "metadata": [{"lang": "en"}]}
            ]
        }
    )


class DeleteRequest(Request):
    ids: list[str]


class EncodeRequest(Request):
    texts: list[str]
    kind: Literal["query", "document"] = "query"
    index: Optional[str] = Field(
        None, description="whose model encodes; may be left out when one index is served"
    )


class Embeddings(BaseModel):
    dim: int
    offsets: list[int] = Field(description="item i is rows offsets[i]:offsets[i+1]")
    data: str = Field(description="base64 of the rows, little-endian float32, row after row")


class HitOut(BaseModel):
    id: str
    score: float = Field(description="what the search ranked by: MaxSim, BM25, or their fusion (hybrid)")
    metadata: dict[str, Any]
    text: Optional[str] = None
    semantic_score: Optional[float] = Field(None, description="MaxSim, where the search computed it")
    keyword_score: Optional[float] = Field(
        None, description="BM25 (0: no query term in the document), where the search computed it"
    )
    passage: Optional[int] = Field(
        None, description="the number of the passage that won the document its score (0: the first)"
    )
    span: Optional[list[int]] = Field(
        None,
        description="[start, end) characters of that passage in `text`; null: the document is one passage",
    )
    explanation: Optional[dict[str, Any]] = Field(None, description="with `explain: true`")

    model_config = ConfigDict(extra="allow")


class SearchResponse(BaseModel):
    hits: Optional[list[HitOut]] = Field(None, description="for `query`")
    results: Optional[list[list[HitOut]]] = Field(None, description="for `queries`: one list per query")
    generation: int


class ExplainResponse(BaseModel):
    id: str
    score: float
    similarity: list[float] = Field(description="per query token: its best similarity in the document")
    doc_token: list[int] = Field(description="per query token: the best-matching stored document token")
    query_tokens: Optional[list[str]] = None
    doc_tokens: Optional[list[str]] = Field(None, description="the text of each matched document token")
    doc_spans: Optional[list[Optional[list[int]]]] = Field(
        None,
        description="[start, end) characters of each matched token in the stored text; null for [CLS]/[SEP]",
    )
    keyword_terms: Optional[list[str]] = Field(
        None, description="the query's keyword terms the document holds (an index with a keyword index)"
    )
    passage: Optional[int] = Field(None, description="the passage explained: the document's best by MaxSim")
    span: Optional[list[int]] = Field(
        None,
        description="[start, end) characters of that passage in the text; null: the document is one passage",
    )

    model_config = ConfigDict(extra="allow")


class DocumentOut(BaseModel):
    id: str
    text: Optional[str]
    metadata: dict[str, Any]
    embeddings: Optional[Embeddings] = Field(None, description="with ?embeddings=true")
    spans: Optional[list[list[int]]] = Field(
        None,
        description="[start, end) characters of each passage in `text`; null: the document is one passage",
    )


class AddResponse(BaseModel):
    ids: list[str]
    generation: int


class DeleteResponse(BaseModel):
    deleted: int
    generation: int


class EncodeResponse(BaseModel):
    kind: str
    embeddings: Embeddings


class IndexSummary(BaseModel):
    documents: int
    generation: int


class HealthResponse(BaseModel):
    status: Literal["ok"]
    version: str
    isa: str
    indexes: dict[str, IndexSummary]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
