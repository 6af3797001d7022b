"""Ragged token matrices: many items' token vectors in one contiguous matrix plus offsets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def offsets_from_lengths(lengths) -> np.ndarray:
    """Item lengths -> int64 offsets from 0 (one more entry than lengths)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


class Ragged(Sequence[np.ndarray]):
    """Token vectors of ``n`` items (queries or documents) stored back to back.

    ``tokens`` is a C-contiguous ``(total_tokens, dim)`` matrix; item ``i`` owns rows
    ``offsets[i]:offsets[i + 1]``. This is exactly the ``doc_tokens`` / ``doc_offsets`` pair
    that :func:`colmax.maxsim` scores, so encoded documents go to the core without a copy.
    """

    __slots__ = ("offsets", "tokens")

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        tokens = np.asarray(tokens)
        offsets = np.asarray(offsets)
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be 2-D (total_tokens, dim), got shape {tokens.shape}")
        if offsets.ndim != 1 or offsets.size == 0 or offsets.dtype != np.int64:
            raise ValueError("offsets must be a 1-D int64 array of n_items + 1 entries")
        if offsets[0] != 0 or offsets[-1] != tokens.shape[0] or np.any(np.diff(offsets) < 0):
            raise ValueError(
                "offsets must start at 0, never decrease and end at tokens.shape[0] "
                f"({tokens.shape[0]}), got {offsets[0]}..{offsets[-1]}"
            )
        self.tokens = tokens
        self.offsets = offsets

    @classmethod
    def from_list(cls, matrices: Sequence[np.ndarray], dim: int | None = None) -> Ragged:
        """Concatenate per-item ``(n_i, dim)`` matrices (one copy)."""
        if not matrices:
            if dim is None:
                raise ValueError("from_list([]) needs dim= to know the width of the empty matrix")
            return cls(np.zeros((0, dim), np.float32), np.zeros(1, np.int64))
        offsets = offsets_from_lengths([m.shape[0] for m in matrices])
        return cls(np.ascontiguousarray(np.concatenate(matrices, axis=0)), offsets)

    @property
    def dim(self) -> int:
        return int(self.tokens.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """Token count of every item, int64."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                raise ValueError("Ragged supports only contiguous slices (step 1)")
            offsets = self.offsets[start : stop + 1] if stop > start else self.offsets[start : start + 1]
            lo = int(offsets[0])
            return Ragged(self.tokens[lo : int(offsets[-1])], offsets - lo)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"item {i} out of range for Ragged of length {n}")
        i %= n
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def __repr__(self) -> str:
        shape = f"n={len(self)}, total_tokens={self.tokens.shape[0]}, dim={self.dim}"
        return f"Ragged({shape}, dtype={self.tokens.dtype})"
