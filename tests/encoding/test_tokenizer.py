"""ColBERT tokenization: markers, truncation, [MASK] expansion, skiplist, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from colmax.encoding import default_model
from colmax.encoding.models import ModelConfig, ModelFormatError
from colmax.encoding.tokenizer import ColbertTokenizer

TOKENIZER = default_model.TOKENIZER
CLS, SEP, MASK, PAD, UNUSED0, UNUSED1 = 101, 102, 103, 0, 1, 2


def make(**settings) -> ColbertTokenizer:
    return ColbertTokenizer(TOKENIZER, ModelConfig(**settings))


def test_plain_document_keeps_cls_sep_and_drops_punctuation():
    tok = make(document_length=180)
    docs = tok.documents(["Paris, the capital of France."])
    ids, keep = docs.ids[0], docs.keep[0]
    assert ids[0] == CLS and ids[-1] == SEP
    comma, period = 1010, 1012
    assert comma in ids and period in ids
    assert not keep[list(ids).index(comma)] and not keep[list(ids).index(period)]
    assert keep[0] and keep[-1]
    assert keep.sum() == len(ids) - 2


def test_markers_are_inserted_by_id_at_position_one():
    tok = make(query_prefix="[unused0]", document_prefix="[unused1]", query_length=32)
    assert tok.queries(["hello"]).ids[0][:2].tolist() == [CLS, UNUSED0]
    assert tok.documents(["hello"]).ids[0][:2].tolist() == [CLS, UNUSED1]


def test_documents_are_truncated_to_document_length_with_sep_last():
    long_text = "word " * 1000
    for prefix in ("", "[unused1]"):
        tok = make(document_length=20, document_prefix=prefix)
        ids = tok.documents([long_text]).ids[0]
        assert len(ids) == 20
        assert ids[-1] == SEP


def test_query_expansion_pads_with_mask_and_keeps_every_position():
    tok = make(query_prefix="[unused0]", query_length=16, do_query_expansion=True)
    q = tok.queries(["what is colbert"])
    ids = q.ids[0]
    assert len(ids) == 16
    n = int(q.n_attended[0])
    assert ids[n - 1] == SEP and np.all(ids[n:] == MASK)
    assert q.keep[0].all()
    assert q.tail_attention == 0
    assert (
        make(query_length=16, do_query_expansion=True, attend_to_expansion_tokens=True)
        .queries(["a"])
        .tail_attention
        == 1
    )


def test_queries_without_expansion_are_not_padded_or_cut_short():
    tok = make(query_length=512, do_query_expansion=False)
    text = "a long pasted paragraph " * 20
    ids = tok.queries([text]).ids[0]
    assert len(ids) > 32 and ids[-1] == SEP and MASK not in ids


def test_skiplist_from_config_and_empty_skiplist():
    assert make(skiplist_words=()).documents(["a, b."]).keep[0].all()
    keep = make(skiplist_words=("b",)).documents(["a, b."]).keep[0]
    assert keep.sum() == len(keep) - 1


def test_empty_and_non_ascii_texts():
    tok = make()
    docs = tok.documents(["", "Ünïcödé — 東京 naïve café"])
    assert docs.ids[0].tolist() == [CLS, SEP]
    assert len(docs.ids[1]) > 2


def test_bad_input_raises_clear_errors():
    tok = make()
    with pytest.raises(TypeError, match="not one string"):
        tok.documents("just one string")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        tok.queries(["ok", 3])
    with pytest.raises(ValueError, match="empty"):
        tok.documents([])
    with pytest.raises(ModelFormatError, match="marker"):
        make(query_prefix="[NOT A TOKEN]")


def test_id_to_token_names_vocabulary_entries():
    tok = make()
    ids = tok.documents(["Paris"]).ids[0]
    assert [tok.id_to_token(int(i)) for i in ids] == ["[CLS]", "paris", "[SEP]"]
    assert tok.id_to_token(10**9) is None


def test_truncation_is_reported_exactly_at_the_limit():
    tok = make(document_length=8, query_length=8, do_query_expansion=False)
    words = ["paris", "berlin", "france", "germany", "capital", "city", "river"]
    fits, over = " ".join(words[:6]), " ".join(words)  # [CLS] + 6 + [SEP] = 8
    for side in (tok.documents, tok.queries):
        items = side([fits, over, ""])
        assert items.truncated.tolist() == [False, True, False]
        assert [len(i) for i in items.ids] == [8, 8, 2]
