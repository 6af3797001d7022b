"""Long documents as passages: the windows over a text's tokens, their ids and character spans,
and encode_passages against encode_documents."""

from __future__ import annotations

import numpy as np
import pytest
from colmax.encoding import default_model
from colmax.encoding.models import ModelConfig
from colmax.encoding.passages import windows
from colmax.encoding.tokenizer import ColbertTokenizer
from hypothesis import given, settings
from hypothesis import strategies as st

CLS, SEP, UNUSED1 = 101, 102, 2


def make(**config) -> ColbertTokenizer:
    return ColbertTokenizer(default_model.TOKENIZER, ModelConfig(**config))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=120),  # tokens per word
    st.integers(1, 30),
    st.data(),
)
def test_windows_cover_every_token_within_the_width(word_sizes, width, data):
    stride = data.draw(st.integers(1, width))
    words = np.repeat(np.arange(len(word_sizes)), word_sizes)
    cuts = windows(words, width, stride)
    n = len(words)
    assert cuts[0][0] == 0 and cuts[-1][1] == n
    covered = np.zeros(n, dtype=bool)
    for i, (a, b) in enumerate(cuts):
        assert 0 < b - a <= width
        covered[a:b] = True
        if i:
            prev_a, prev_b = cuts[i - 1]
            assert prev_a < a <= prev_b  # no gap: each window starts within the one before
            assert a <= prev_a + stride
            # a window starts on a word's first token unless that word began at or before prev_a
            if words[a] == words[a - 1]:
                assert words[prev_a] == words[a] or a == prev_a + 1
    assert covered.all()
    assert len(cuts) == 1 or cuts[-2][1] < n  # no window after one that already reached the end


def test_a_short_text_is_one_passage_tokenized_as_documents():
    tok = make(document_length=180)
    texts = ["Paris, the capital of France.", "", "word " * 178, "naïve café — crème brûlée"]
    items, where = tok.passages(texts)
    docs = tok.documents(texts)
    assert where.owner.tolist() == [0, 1, 2, 3] and not where.truncated.any()
    for i in range(4):
        np.testing.assert_array_equal(items.ids[i], docs.ids[i])
        np.testing.assert_array_equal(items.keep[i], docs.keep[i])
    start, end = where.spans[3]
    assert texts[3][start:end] == texts[3]


def test_a_long_text_is_cut_into_overlapping_passages_with_their_spans():
    tok = make(document_length=20, document_prefix="[unused1]")
    text = " ".join(f"word{i}" if i % 7 else "extraordinarily" for i in range(60))
    items, where = tok.passages([text], stride=10)
    width = tok.passage_width(20)
    assert width == 20 - 3  # [CLS], marker, [SEP]
    whole = tok._whole.encode(text).ids[1:-1]
    spans = tok.passage_spans(text, stride=10)
    assert len(items) == len(spans) > 3 and (where.owner == 0).all()
    position = 0
    for ids, span, char_spans in zip(items.ids, where.spans.tolist(), spans):
        assert ids[0] == CLS and ids[1] == UNUSED1 and ids[-1] == SEP and len(ids) <= 20
        content = ids[2:-1].tolist()
        # a run of the text's own tokens, later than the previous passage's
        start = next(s for s in range(position, len(whole)) if whole[s : s + len(content)] == content)
        position = start + 1
        assert len(char_spans) == len(ids) and (char_spans[[0, 1, -1]] == -1).all()
        assert span == [int(char_spans[2, 0]), int(char_spans[-2, 1])]
        # every token's characters lie inside the passage's span
        assert (char_spans[2:-1, 0] >= span[0]).all() and (char_spans[2:-1, 1] <= span[1]).all()
        assert not text[span[0] : span[1]].startswith(("##", " "))
    assert where.spans[-1, 1] == len(text)
    first, truncated = tok.passages([text, "short"], stride=10, truncate=True)
    assert len(first) == 2 and truncated.truncated.tolist() == [True, False]
    np.testing.assert_array_equal(first.ids[0], items.ids[0])


def test_passage_settings_are_checked():
    tok = make(document_length=20)
    assert tok.passage_settings() == (20, 13)  # 3/4 of the 18 tokens of text, rounded down
    with pytest.raises(ValueError, match="exceeds the model's document length of 20"):
        tok.passage_settings(21)
    with pytest.raises(ValueError, match="stride must be at most 16"):
        tok.passage_settings(18, 17)
    with pytest.raises(ValueError, match="leaves no room for text"):
        tok.passage_settings(2)
    with pytest.raises(TypeError, match="passage stride must be an int"):
        tok.passage_settings(20, 2.5)


def test_continued_passages_carry_the_title_in_place_of_tokens_the_passage_before_holds():
    tok = make(document_length=20, document_prefix="[unused1]")
    text = " ".join(f"word{i}" for i in range(60))
    plain, bare = tok.passages([text], stride=10)
    items, where = tok.passages([text, text], stride=10, titles=["Alpine glaciers retreat", None])
    title = tok._whole.encode("Alpine glaciers retreat", add_special_tokens=False).ids
    assert 0 < len(title) <= tok.passage_width(20) // 4
    n = len(plain)
    # the same windows and spans as without a title (the keyword index reads the spans)
    assert len(items) == 2 * n and (where.spans[:n] == bare.spans).all()
    for i in range(n):  # the document without a title: as before
        np.testing.assert_array_equal(items.ids[n + i], plain.ids[i])
    np.testing.assert_array_equal(items.ids[0], plain.ids[0])  # the first passage: the text's start
    whole = tok._whole.encode(text).ids[1:-1]
    covered = np.zeros(len(whole), dtype=bool)
    spans = tok.passage_spans(text, stride=10, title="Alpine glaciers retreat")
    for k, (ids, (start, end), char_spans) in enumerate(zip(items.ids[:n], where.spans.tolist(), spans)):
        assert len(ids) <= 20 and len(char_spans) == len(ids)
        head = [] if k == 0 else title
        assert ids[2 : 2 + len(head)].tolist() == head and (char_spans[: 2 + len(head)] == -1).all()
        content = ids[2 + len(head) : -1].tolist()
        at = next(s for s in range(len(whole)) if whole[s : s + len(content)] == content)
        covered[at : at + len(content)] = True
        # what the passage holds lies in its window's span, and ends with it
        assert start <= char_spans[2 + len(head), 0] and end == char_spans[-2, 1]
    assert covered.all()
    with pytest.raises(ValueError, match="one per text"):
        tok.passages([text], titles=["a", "b"])


def test_encode_passages_matches_encode_documents_on_each_passage():
    import colmax

    enc = colmax.Encoder(int8=False)
    long_text = "The committee reviewed the accounts and the repairs. " * 40 + "The code is violin."
    ragged, where = enc.encode_passages(["A short one.", long_text])
    counts = where.counts
    assert counts[0] == 1 and counts[1] > 1 and len(ragged) == counts.sum()
    np.testing.assert_allclose(ragged[0], enc.encode_documents(["A short one."])[0], atol=1e-5)
    texts = [long_text[s:e] for s, e in where.spans[1:].tolist()]
    assert "violin" in texts[-1] and all(t.strip() == t for t in texts)
    seen = []

    class Bar:
        def update(self, n):
            seen.append(n)

    enc.batch_tokens = 200  # several batches: the bar moves with each, by documents completed
    enc.encode_passages(["one", "two words", long_text], progress=Bar())
    assert sum(seen) == 3 and len(seen) > 2


def test_first_passages_are_encoded_exactly_as_truncation_encodes_them():
    # The default model scales its int8 activations per batch: were continuing passages batched
    # with first ones, splitting one document would move every other document's vectors.
    import colmax

    enc = colmax.Encoder(batch_tokens=600)
    words = "wing flow pressure shock boundary layer heat transfer plate cone".split()
    texts = [" ".join(words[(i + j) % 10] for j in range(5 + 37 * (i % 7))) for i in range(24)]
    split, where = enc.encode_passages(texts)
    cut, truncated = enc.encode_passages(texts, truncate=True)
    assert where.counts.max() > 1 and truncated.truncated.sum() == (where.counts > 1).sum()
    first = np.flatnonzero(np.r_[True, where.owner[1:] != where.owner[:-1]])
    for d, p in enumerate(first):
        assert np.array_equal(split[int(p)], cut[d])
