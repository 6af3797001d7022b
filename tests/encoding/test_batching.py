"""The encoder's batching and the tokenizer's chunks, crossed on purpose (exactly at a boundary,
one under, one over) against one unbatched pass: the same tokens and the same vectors."""

from __future__ import annotations

import colmax
import numpy as np
import pytest
from colmax.encoding import encoder as encoder_module
from colmax.encoding import tokenizer as tokenizer_module
from tiny_checkpoints import tiny_model

# six documents of nine tokens each: [CLS] [D] six words [SEP]
TEXTS = [
    "paris is the capital of france",
    "berlin is the capital of germany",
    "what is late interaction of colbert",
    "france is the capital of paris",
    "germany is what the capital is",
    "colbert late interaction is the capital",
]
WIDTH = 9


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def reference(model):
    """Every document in one inference batch."""
    encoder = colmax.Encoder(model, batch_tokens=10**6)
    assert encoder.tokenizer.documents(TEXTS).ids[0].size == WIDTH
    return encoder.encode_documents(TEXTS)


def batches_of(encoder, monkeypatch) -> list[tuple[int, int]]:
    """(documents, width) of every inference call the real session runs."""
    shapes: list[tuple[int, int]] = []
    run = encoder._run

    def recording(ids, attention):
        shapes.append(ids.shape)
        return run(ids, attention)

    monkeypatch.setattr(encoder, "_run", recording)
    return shapes


def same_vectors(got, want) -> None:
    np.testing.assert_array_equal(got.offsets, want.offsets)
    np.testing.assert_allclose(got.tokens, want.tokens, atol=1e-5)  # float32 sums in another order


@pytest.mark.parametrize("batch_tokens, sizes", [(26, [2, 2, 2]), (27, [3, 3]), (28, [3, 3])])
def test_batch_tokens_boundary(model, reference, monkeypatch, batch_tokens, sizes):
    encoder = colmax.Encoder(model, batch_tokens=batch_tokens)
    shapes = batches_of(encoder, monkeypatch)
    same_vectors(encoder.encode_documents(TEXTS), reference)
    assert shapes == [(n, WIDTH) for n in sizes]


@pytest.mark.parametrize("limit, sizes", [(5, [5, 1]), (6, [6]), (7, [6])])
def test_max_batch_size_boundary(model, reference, monkeypatch, limit, sizes):
    monkeypatch.setattr(encoder_module, "MAX_BATCH_SIZE", limit)
    encoder = colmax.Encoder(model, batch_tokens=10**6)
    shapes = batches_of(encoder, monkeypatch)
    same_vectors(encoder.encode_documents(TEXTS), reference)
    assert [n for n, _ in shapes] == sizes


@pytest.mark.parametrize("batch_size, sizes", [(5, [5, 1]), (6, [6]), (7, [6]), (1, [1] * 6)])
def test_explicit_batch_size_boundary(model, reference, monkeypatch, batch_size, sizes):
    encoder = colmax.Encoder(model)
    shapes = batches_of(encoder, monkeypatch)
    same_vectors(encoder.encode_documents(TEXTS, batch_size=batch_size), reference)
    assert [n for n, _ in shapes] == sizes


@pytest.mark.parametrize("n", [3, 4, 5, 9])  # chunk of 4: one under, exactly, one over, two over
def test_tokenize_chunk_boundary(model, monkeypatch, n):
    texts = (TEXTS * 2)[:n]
    tokenizer = colmax.Encoder(model).tokenizer
    whole_docs, whole_queries = tokenizer.documents(texts), tokenizer.queries(texts)
    monkeypatch.setattr(tokenizer_module, "TOKENIZE_CHUNK", 4)
    docs, queries = tokenizer.documents(texts), tokenizer.queries(texts)
    for got, want in ((docs, whole_docs), (queries, whole_queries)):
        assert len(got.ids) == n
        for field in ("ids", "keep"):
            for a, b in zip(getattr(got, field), getattr(want, field)):
                np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(got.n_attended, want.n_attended)
