"""int8 documents: quantize_int8 and every int8 kernel against an independent NumPy model of the
specification (colmax/quantize.hpp), bit for bit, and against float32 within the int8 error."""

from __future__ import annotations

import colmax
import numpy as np
import pytest
from int8_model import int8_maxsim as int8_reference
from int8_model import quantize_reference


def corpus(rng, lengths, dim, shift=0.0):
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = (rng.uniform(-1, 1, (int(offsets[-1]), dim)) + shift).astype(np.float32)
    return tokens, offsets


LENGTHS = [1, 4, 5, 6, 9, 10, 11, 0, 16, 17, 31, 33, 300, 2, 0, 64]


def test_quantize_int8_matches_the_reference(isa, rng):
    # 100 dims: whole SIMD steps and a tail on every instruction set
    x = rng.standard_normal((500, 100)).astype(np.float32)
    x *= rng.uniform(1e-3, 10, (500, 1)).astype(np.float32)
    x[7] = 0.0  # a zero row: scale 0
    x[8, :] = 0.0
    x[8, 3] = -2.5  # a single value: exactly -127 at scale 2.5 / 127
    values, scales = colmax.quantize_int8(x)
    want_values, want_scales = quantize_reference(x, 127)
    assert values.dtype == np.int8 and scales.dtype == np.float32 and values.shape == x.shape
    np.testing.assert_array_equal(values, want_values)
    np.testing.assert_array_equal(scales, want_scales)
    assert scales[7] == 0 and values[8, 3] == -127 and np.abs(values).max() == 127
    # at most half a step per value
    assert np.all(np.abs(values * scales[:, None] - x) <= scales[:, None] * 0.5 * (1 + 1e-5))


def test_quantize_int8_rounds_half_to_even():
    # 127 / 127 = 1 exactly: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0
    values, scales = colmax.quantize_int8(np.array([[127.0, 0.5, 1.5, 2.5, -0.5, -1.5]], np.float32))
    assert scales[0] == 1.0 and values[0].tolist() == [127, 0, 2, 2, 0, -2]


@pytest.mark.parametrize(
    ("dim", "n_query"), [(1, 3), (6, 32), (36, 16), (64, 32), (100, 20), (128, 33), (130, 17), (384, 70)]
)
def test_every_kernel_gives_the_reference_bits(isa, rng, dim, n_query):
    tokens, offsets = corpus(rng, LENGTHS, dim)
    values, scales = colmax.quantize_int8(tokens)
    query = rng.uniform(-1, 1, (n_query, dim)).astype(np.float32)
    query[0] = 0.0  # a zero query token contributes 0
    got = colmax.maxsim(query, values, offsets, doc_scales=scales)
    np.testing.assert_array_equal(got, int8_reference(query, values, scales, offsets))


def test_extreme_values_do_not_saturate(isa, rng):
    # Rows of +-127 and query tokens of +-1 (quantized to +-32) are the largest sums the kernels'
    # 16-bit steps see (AVX2: four products); -128, outside quantize_int8's range, is scored
    # exactly too. 68 dims: an odd count of 4-byte steps, so AVX2's step pairs end in padding.
    dim = 68
    values = np.where(rng.random((40, dim)) < 0.5, 127, -128).astype(np.int8)
    values[:20] = 127
    scales = rng.uniform(0.5, 2, 40).astype(np.float32)
    offsets = np.array([0, 10, 20, 40], np.int64)
    query = np.where(rng.random((20, dim)) < 0.5, 1.0, -1.0).astype(np.float32)
    query[:5] = 1.0
    got = colmax.maxsim(query, values, offsets, doc_scales=scales)
    np.testing.assert_array_equal(got, int8_reference(query, values, scales, offsets))


def test_negative_similarities_and_scales(isa, rng):
    tokens, offsets = corpus(rng, [1, 3, 13, 40], 48, shift=2.0)
    values, scales = colmax.quantize_int8(tokens)
    query = (rng.uniform(-1, 1, (32, 48)) - 2.0).astype(np.float32)
    got = colmax.maxsim(query, values, offsets, doc_scales=scales)
    assert np.all(got < 0)
    np.testing.assert_array_equal(got, int8_reference(query, values, scales, offsets))
    flipped = colmax.maxsim(query, values, offsets, doc_scales=-scales)  # a row stands for scale * values
    np.testing.assert_array_equal(flipped, int8_reference(query, values, -scales, offsets))


def test_close_to_float32_scores(isa, rng):
    tokens, offsets = corpus(rng, LENGTHS, 128)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    query = rng.standard_normal((32, 128)).astype(np.float32)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    values, scales = colmax.quantize_int8(tokens)
    exact = colmax.maxsim(query, tokens, offsets)
    got = colmax.maxsim(query, values, offsets, doc_scales=scales)
    finite = np.isfinite(exact)
    assert np.array_equal(finite, np.isfinite(got))
    # per similarity: the query's step is 1/32 of its largest value, the document's 1/127
    np.testing.assert_allclose(got[finite], exact[finite], atol=32 * 0.02)


def test_batch_topk_candidates_and_threads(isa, rng):
    tokens, offsets = corpus(rng, rng.integers(0, 80, 600), 40)
    values, scales = colmax.quantize_int8(tokens)
    queries = [rng.standard_normal((n, 40)).astype(np.float32) for n in (32, 1, 17)]
    singles = [colmax.maxsim(q, values, offsets, doc_scales=scales, threads=1) for q in queries]
    batch = colmax.maxsim_batch(queries, values, offsets, doc_scales=scales, threads=2)
    np.testing.assert_array_equal(batch, np.stack(singles))
    docs = colmax.Ragged(values, offsets)
    np.testing.assert_array_equal(colmax.maxsim(queries[0], docs, doc_scales=scales, threads=3), singles[0])
    ids, top = colmax.maxsim_topk(queries[0], values, offsets, 5, doc_scales=scales, candidates=[9, 3, 500])
    order = sorted([9, 3, 500], key=lambda i: (-singles[0][i], i))
    assert ids.tolist() == order and top.tolist() == singles[0][order].tolist()


def test_scalar_is_the_default_kernels_oracle(rng):
    tokens, offsets = corpus(rng, LENGTHS, 200)
    values, scales = colmax.quantize_int8(tokens)
    query = rng.standard_normal((40, 200)).astype(np.float32)
    fast = colmax.maxsim(query, values, offsets, doc_scales=scales)
    active = colmax.active_isa()
    colmax.set_active_isa("scalar")
    try:
        slow = colmax.maxsim(query, values, offsets, doc_scales=scales)
    finally:
        colmax.set_active_isa(active)
    np.testing.assert_array_equal(fast, slow)


Q = np.ones((2, 4), np.float32)
V = np.ones((5, 4), np.int8)
S = np.ones(5, np.float32)
OFFSETS = np.array([0, 2, 5], np.int64)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: colmax.maxsim(Q, V, OFFSETS), TypeError, r"int8: pass doc_scales=.*quantize_int8"),
        (lambda: colmax.maxsim(Q, V, OFFSETS, doc_scales=S.astype(np.float64)), TypeError, "float32"),
        (lambda: colmax.maxsim(Q, V, OFFSETS, doc_scales=S[:4]), ValueError, r"one entry per row .*\(5\)"),
        (lambda: colmax.maxsim(Q, V, OFFSETS, doc_scales=S[None]), ValueError, "1-D"),
        (lambda: colmax.maxsim(Q, V, OFFSETS, doc_scales=[1.0] * 5), TypeError, "numpy array"),
        (lambda: colmax.maxsim(Q, V, OFFSETS, doc_scales=S.astype(">f4")), TypeError, "non-native"),
        (
            lambda: colmax.maxsim(Q, V.astype(np.float32), OFFSETS, doc_scales=S),
            ValueError,
            "int8 doc_tokens only",
        ),
        (lambda: colmax.maxsim_topk(Q, V, OFFSETS, 1), TypeError, "doc_scales"),
        (lambda: colmax.maxsim_batch([Q], V, OFFSETS), TypeError, "doc_scales"),
        (lambda: colmax.quantize_int8(np.ones((2, 3), np.int32)), TypeError, "floating-point"),
        (lambda: colmax.quantize_int8(np.ones(3, np.float32)), ValueError, "2-D"),
        (lambda: colmax.quantize_int8(np.array([[1.0, np.nan]], np.float32)), ValueError, "NaN"),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
