"""Long documents as passages: overlapping windows of a document's tokens, cut on the
tokenizer's own boundaries, each encoded as a document of its own.

A window holds at most ``width`` text tokens (the model's document length minus its special
tokens and marker); window ``i + 1`` starts ``stride`` tokens after window ``i``, moved back to
the start of the word it would cut (so no passage opens on a "##" word piece), and the last
window ends with the text. Every token of the text is in some window, so nothing is lost; each
passage knows its characters ``[start, end)`` in the text (the tokenizer's offsets).

A document with a title (its metadata "title") carries it into every passage after the first,
at most a quarter of a window: a continued passage otherwise lacks what the document is about,
which the first passage has when the text opens with its title (`colmax index` indexes title +
text) and every passage's row of the keyword index holds. The title takes the place of the
window's first tokens, only of those the window before holds too, so the windows, their spans
(what the keyword index reads) and their number stay as without titles. Through `colmax eval`
(README, Evaluation) it lifted Cranfield's nDCG@10 from 0.3804 to 0.3927 with MaxSim and from
0.3996 to 0.4021 in hybrid search (fusion weight 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The default step between passages, as a share of the window (rounded down): windows overlap
# by a quarter, so a sentence one window cuts is whole in the next. Compared with no overlap
# through `colmax eval --mode all` (benchmarks/eval_passages.py; README, Long documents): no
# overlap scored 0.003-0.007 higher on Cranfield and in hybrid search, 0.010 lower on SciFact's
# MaxSim, and leaves cut sentences whole nowhere.
DEFAULT_STRIDE_SHARE = 0.75
# The most of a window a title may take in a continued passage: the rest is the document's text.
TITLE_SHARE = 0.25


@dataclass(frozen=True)
class Passages:
    """Where the passages of some documents come from, passages in document order.

    ``owner[i]`` is the document passage ``i`` belongs to (ascending), ``spans[i]`` its
    characters ``[start, end)`` in that document's text; ``truncated[d]`` says that document
    ``d`` was cut to its first passage (only when truncation was asked for)."""

    owner: np.ndarray
    spans: np.ndarray
    truncated: np.ndarray

    def __len__(self) -> int:
        return len(self.owner)

    @property
    def counts(self) -> np.ndarray:
        """Passages per document."""
        return np.bincount(self.owner, minlength=len(self.truncated))

    @classmethod
    def whole(cls, n: int) -> Passages:
        """``n`` documents of one passage each, spans unknown (-1)."""
        return cls(np.arange(n, dtype=np.int64), np.full((n, 2), -1, np.int64), np.zeros(n, dtype=bool))


def default_stride(width: int) -> int:
    return max(1, int(width * DEFAULT_STRIDE_SHARE))


def title_tokens(width: int) -> int:
    """The most title tokens a continued passage of ``width`` text tokens carries."""
    return int(width * TITLE_SHARE)


def windows(word_ids: np.ndarray, width: int, stride: int) -> list[tuple[int, int]]:
    """The ``[a, b)`` token windows of a text whose tokens belong to words ``word_ids`` (-1: a
    token of no word): at most ``width`` tokens each, consecutive starts about ``stride``
    apart (moved back to a word's first token, never to or before the previous start), the
    last ending at the last token. One empty window for a text without tokens."""
    n = len(word_ids)
    if n <= width:
        return [(0, n)]
    out = []
    a = 0
    while True:
        b = min(a + width, n)
        out.append((a, b))
        if b == n:
            return out
        nxt = a + stride
        # back to the first token of the word it would cut, if that word started after a
        while nxt > a + 1 and word_ids[nxt] >= 0 and word_ids[nxt] == word_ids[nxt - 1]:
            nxt -= 1
        a = nxt
