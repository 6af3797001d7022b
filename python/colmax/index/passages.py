"""Documents made of several positions (passages): which position starts which document, and
rankings of passages turned into rankings of documents.

A document split into passages occupies consecutive positions, its first passage first, so a
position's document is named by its first position (its "head"). Only the positions that are
not a head ("continued" ones) need recording: an index of short documents has none, and every
search over it takes the single-passage paths unchanged. A document's score is its best
passage's; the best ``k`` documents are the first ``k`` distinct documents of the passages
ranked best first, since each document first appears there at its best passage.
"""

from __future__ import annotations

import threading

import numpy as np

from .store import Store


class Layout:
    """The continued positions below ``end`` (a commit's ``next_pos``), read from the store on
    first use and extended from an earlier commit's layout when the positions it covered are
    unchanged (their segments are the same)."""

    def __init__(self, store: Store, end: int, previous: Layout | None = None) -> None:
        self._store, self.end = store, end
        self._previous = previous if previous is not None and previous.end <= end else None
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        arrays = self._arrays
        if arrays is not None:
            return arrays
        with self._lock:
            if self._arrays is None:
                first, parts = 0, []  # (continued positions, their heads)
                if self._previous is not None:
                    parts.append(self._previous._load())
                    first = self._previous.end
                positions, passages = self._store.continued(first, self.end)
                parts.append((positions, positions - passages))
                self._arrays = (np.concatenate([p for p, _ in parts]), np.concatenate([h for _, h in parts]))
                self._previous = None  # no longer needed: let it go
            return self._arrays

    @property
    def split(self) -> bool:
        """Whether any document below ``end`` has more than one passage."""
        return self._load()[0].size > 0

    def heads(self, positions: np.ndarray) -> np.ndarray:
        """The first position of the document of each position."""
        continued, head = self._load()
        positions = np.asarray(positions, dtype=np.int64)
        if continued.size == 0 or positions.size == 0:
            return positions
        at = np.minimum(np.searchsorted(continued, positions), continued.size - 1)
        return np.where(continued[at] == positions, head[at], positions)


def best_per_document(
    heads: np.ndarray, positions: np.ndarray, scores: np.ndarray, k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Of passages ``positions`` with ``scores`` (documents ``heads``), each document's best
    passage, the documents ranked by it: score descending, ties by the lower head (the earlier
    added document), a document's ties by the lower position. At most ``k`` documents."""
    scores = np.asarray(scores)
    order = np.lexsort((positions, heads, -scores))
    _, first = np.unique(heads[order], return_index=True)
    best = order[np.sort(first)][:k]
    return positions[best], scores[best]


def distinct(heads: np.ndarray) -> int:
    return int(np.unique(heads).size)
