"""The fields both rerankers share, on pydantic (which LangChain and LlamaIndex components are
built on): ``model`` and ``top_n``, checked when a reranker is built, and the ranker they make."""

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from .common import TextRanker, optional_count

# No `from __future__ import annotations` here: pydantic evaluates the field annotations, and
# `X | None` cannot be evaluated before Python 3.10.


class RerankerFields(BaseModel):
    """Mixed into a framework's reranker base class, before it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any = Field(default=None, description="None (the default model), a model directory or an Encoder")
    top_n: Optional[int] = Field(default=3, description="how many to keep, best first (None: all)")
    _ranker: TextRanker = PrivateAttr()

    @field_validator("top_n", mode="before")
    @classmethod
    def _top_n(cls, value):
        return optional_count("top_n", value)

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        self._ranker = TextRanker(self.model)

    def ranked(self, query: str, texts: list[str]) -> list[tuple[int, float]]:
        """``(position in texts, MaxSim score)`` of the ``top_n`` best texts, best first."""
        return self._ranker.rank(query, texts, self.top_n)
