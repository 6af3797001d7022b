"""How much one request may ask for: body size, k, batch sizes, query length. A request over a
cap is refused before any work (413 for the body, 422 for the rest) with the cap in the message."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass

from .errors import ApiError


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 32 << 20  # 32 MiB: about 20,000 SciFact abstracts in one add
    max_k: int = 1000
    max_batch: int = 256  # queries per search, texts per /encode
    max_documents: int = 10_000  # documents per add, ids per delete
    max_query_chars: int = 4096  # beyond any model's query length; longer ones are refused anyway

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")

    def k(self, k: int) -> None:
        if k > self.max_k:
            raise ApiError(422, "too_large", f"k is {k}, this server returns at most {self.max_k} hits")

    def batch(self, what: str, items: Sized, cap: int | None = None) -> None:
        cap = self.max_batch if cap is None else cap
        if len(items) > cap:
            raise ApiError(
                422, "too_large", f"{what} has {len(items)} entries, at most {cap} per request: split it"
            )

    def queries(self, queries: list[str]) -> None:
        for i, q in enumerate(queries):
            if len(q) > self.max_query_chars:
                which = "the query" if len(queries) == 1 else f"query {i}"
                raise ApiError(
                    422,
                    "too_large",
                    f"{which} has {len(q)} characters, at most {self.max_query_chars}: shorten it",
                )
