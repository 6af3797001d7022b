"""colmax.maxsim / maxsim_batch / maxsim_topk against an independent NumPy reference."""

from __future__ import annotations

import subprocess
import sys
import threading

import colmax
import numpy as np
import pytest
from colmax import scoring
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def reference(query, tokens, offsets):
    """MaxSim written the obvious way, in float64, from float32 values."""
    tokens = tokens.astype(np.float64)
    out = []
    for i in range(len(offsets) - 1):
        doc = tokens[offsets[i] : offsets[i + 1]]
        out.append((query.astype(np.float64) @ doc.T).max(axis=1).sum() if len(doc) else -np.inf)
    return np.array(out)


def ragged(rng, lengths, dim, shift=0.0):
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = (rng.uniform(-1, 1, (int(offsets[-1]), dim)) + shift).astype(np.float32)
    return tokens, offsets


def stored(tokens, storage):
    """(array passed to colmax, the float32 values it represents)."""
    if storage == "float32":
        return tokens, tokens
    if storage == "float16":
        half = tokens.astype(np.float16)
        return half, half.astype(np.float32)
    bits = colmax.to_bfloat16(tokens)
    return bits, colmax.from_bfloat16(bits)


def tolerance(isa, storage, dim, n_query):
    if isa == "avx512bf16" and storage == "bfloat16":  # the query is rounded to bfloat16 too
        return 1e-2 * np.sqrt(dim) * n_query
    return 2e-5 * dim * n_query + 1e-4


LENGTHS = [1, 5, 9, 10, 11, 13, 0, 16, 17, 31, 32, 33, 300, 2, 0, 64]


@pytest.mark.parametrize("storage", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize(("dim", "n_query"), [(1, 3), (7, 32), (64, 32), (128, 32), (130, 33), (384, 16)])
def test_matches_reference_for_every_kernel(isa, rng, storage, dim, n_query):
    tokens, offsets = ragged(rng, LENGTHS, dim)
    docs, values = stored(tokens, storage)
    query = rng.uniform(-1, 1, (n_query, dim)).astype(np.float32)
    scores = colmax.maxsim(query, docs, offsets)
    assert scores.dtype == np.float32 and scores.shape == (len(LENGTHS),)
    np.testing.assert_allclose(
        scores, reference(query, values, offsets), atol=tolerance(isa, storage, dim, n_query)
    )


def test_empty_documents_score_minus_infinity(isa, rng):
    tokens, offsets = ragged(rng, [0, 3, 0], 8)
    scores = colmax.maxsim(rng.standard_normal((2, 8)).astype(np.float32), tokens, offsets)
    assert scores[0] == -np.inf and scores[2] == -np.inf and np.isfinite(scores[1])


def test_exact_when_every_similarity_is_negative(isa, rng):
    tokens, offsets = ragged(rng, [1, 7, 40], 64, shift=2.0)
    query = (rng.uniform(-1, 1, (32, 64)) - 2.0).astype(np.float32)
    scores = colmax.maxsim(query, tokens, offsets)
    assert np.all(scores < 0)
    np.testing.assert_allclose(scores, reference(query, tokens, offsets), rtol=1e-5)


def test_ragged_shorthand_and_candidates(rng):
    tokens, offsets = ragged(rng, [3, 9, 4, 1], 16)
    docs = colmax.Ragged(tokens, offsets)
    query = rng.standard_normal((5, 16)).astype(np.float32)
    full = colmax.maxsim(query, docs)
    np.testing.assert_array_equal(full, colmax.maxsim(query, tokens, offsets))
    np.testing.assert_array_equal(colmax.maxsim(query, docs, candidates=[3, 1, 3]), full[[3, 1, 3]])


def test_batch_equals_separate_calls(isa, rng):
    tokens, offsets = ragged(rng, LENGTHS, 48)
    queries = [rng.standard_normal((n, 48)).astype(np.float32) for n in (32, 1, 17, 70)]
    batch = colmax.maxsim_batch(queries, tokens, offsets)
    assert batch.shape == (4, len(LENGTHS))
    for row, query in zip(batch, queries):
        np.testing.assert_array_equal(row, colmax.maxsim(query, tokens, offsets))
    subset = colmax.maxsim_batch(colmax.Ragged.from_list(queries), tokens, offsets, candidates=[5, 0])
    np.testing.assert_array_equal(subset, batch[:, [5, 0]])


def test_topk_order_ties_and_clipping(rng):
    tokens, offsets = ragged(rng, [4, 4, 4, 4, 0], 8)
    tokens[8:12] = tokens[0:4]  # doc 2 duplicates doc 0: equal scores, lower index first
    query = rng.standard_normal((3, 8)).astype(np.float32)
    scores = colmax.maxsim(query, tokens, offsets)
    ids, top = colmax.maxsim_topk(query, tokens, offsets, 10)
    expected = sorted(range(5), key=lambda i: (-scores[i], i))
    assert ids.dtype == np.int64 and top.dtype == np.float32
    assert ids.tolist() == expected and ids[-1] == 4  # the empty document (-inf) ranks last
    np.testing.assert_array_equal(top, scores[expected])
    ids, _ = colmax.maxsim_topk(query, tokens, offsets, 2, candidates=np.array([2, 0, 3]))
    assert ids.tolist() == sorted([2, 0, 3], key=lambda i: (-scores[i], i))[:2]


def test_results_do_not_depend_on_thread_count(rng):
    lengths = rng.integers(1, 120, size=4000)
    tokens, offsets = ragged(rng, lengths, 64)
    query = rng.standard_normal((32, 64)).astype(np.float32)
    one = colmax.maxsim(query, tokens, offsets, threads=1)
    for threads in (2, 3, 16, np.int64(2)):  # any integer, numpy's too
        np.testing.assert_array_equal(colmax.maxsim(query, tokens, offsets, threads=threads), one)


def test_concurrent_python_threads_share_the_engine(rng):
    tokens, offsets = ragged(rng, rng.integers(1, 60, size=500), 32)
    queries = [rng.standard_normal((8, 32)).astype(np.float32) for _ in range(8)]
    expected = [colmax.maxsim(q, tokens, offsets) for q in queries]
    results = [None] * len(queries)

    def work(i):
        results[i] = colmax.maxsim(queries[i], tokens, offsets, threads=2)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(queries))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_memory_mapped_documents_are_scored_in_place(tmp_path, rng):
    tokens, offsets = ragged(rng, [5, 50, 2], 32)
    path = tmp_path / "tokens.f16"
    tokens.astype(np.float16).tofile(path)
    mapped = np.memmap(path, dtype=np.float16, mode="r", shape=tokens.shape)
    query = rng.standard_normal((4, 32)).astype(np.float32)
    np.testing.assert_allclose(
        colmax.maxsim(query, mapped, offsets), colmax.maxsim(query, tokens.astype(np.float16), offsets)
    )


def test_bfloat16_helpers_round_to_nearest_even():
    values = np.array([1.0, -2.5, 1.00390625, 1.01171875, 3.0e38, np.inf, np.nan], np.float32)
    bits = colmax.to_bfloat16(values)
    assert bits.dtype == np.uint16
    back = colmax.from_bfloat16(bits)
    assert back[0] == 1.0 and back[1] == -2.5
    assert back[2] == 1.0  # halfway between 1.0 and 1.0078125: ties go to the even mantissa
    assert back[3] == 1.015625  # halfway, rounds up to the even neighbour
    assert np.isinf(back[5]) and np.isnan(back[6])
    with pytest.raises(TypeError, match="float32"):
        colmax.to_bfloat16(values.astype(np.float64))


@pytest.mark.parametrize("size", [15, 16, 17, 33])  # chunk of 16: one under, exactly, over, two over
def test_bfloat16_conversion_chunks(monkeypatch, rng, size):
    values = rng.standard_normal((size, 3)).astype(np.float32)
    values[0, 0], values[-1, -1] = np.nan, 1.00390625  # special values at both ends of the array
    whole = colmax.to_bfloat16(values)
    monkeypatch.setattr(scoring, "_CONVERT_CHUNK", 16)
    chunked = colmax.to_bfloat16(values)
    np.testing.assert_array_equal(chunked, whole)
    assert chunked.shape == values.shape
    # and against the definition: round to nearest even on the upper 16 bits
    bits = values.view(np.uint32).astype(np.uint64)
    want = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    finite = ~np.isnan(values)
    np.testing.assert_array_equal(chunked[finite], want[finite])


@settings(max_examples=60, deadline=None)
@given(
    dim=st.integers(1, 140),
    n_query=st.integers(1, 70),
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    seed=st.integers(0, 2**32 - 1),
    storage=st.sampled_from(["float32", "float16", "bfloat16"]),
)
def test_property_random_shapes(dim, n_query, lengths, seed, storage):
    rng = np.random.default_rng(seed)
    tokens, offsets = ragged(rng, lengths, dim)
    docs, values = stored(tokens, storage)
    query = rng.uniform(-1, 1, (n_query, dim)).astype(np.float32)
    want = reference(query, values, offsets)
    got = colmax.maxsim(query, docs, offsets)
    np.testing.assert_allclose(got, want, atol=tolerance(colmax.active_isa(), storage, dim, n_query))
    k = 1 + seed % len(lengths)
    ids, _ = colmax.maxsim_topk(query, docs, offsets, k)
    assert len(ids) == k and len(set(ids.tolist())) == k
    ranked = got[ids]
    assert np.all(ranked[:-1] >= ranked[1:])  # no subtraction: empty documents score -inf


@settings(max_examples=30, deadline=None)
@given(
    query=hnp.arrays(
        np.float32, st.tuples(st.integers(1, 5), st.just(6)), elements=st.floats(-4, 4, width=32)
    )
)
def test_property_scalar_and_active_kernel_agree(query):
    rng = np.random.default_rng(0)
    tokens, offsets = ragged(rng, [1, 6, 13, 0], 6)
    active = colmax.active_isa()
    fast = colmax.maxsim(query, tokens, offsets)
    colmax.set_active_isa("scalar")
    try:
        slow = colmax.maxsim(query, tokens, offsets)
    finally:
        colmax.set_active_isa(active)
    np.testing.assert_allclose(fast, slow, atol=1e-4)


# --- bad input -------------------------------------------------------------------------------

Q = np.ones((2, 4), np.float32)
T = np.ones((5, 4), np.float32)
OFFSETS = np.array([0, 2, 5], np.int64)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: colmax.maxsim(Q.astype(np.float64), T, OFFSETS), TypeError, r"float32.*astype"),
        (lambda: colmax.maxsim(Q.tolist(), T, OFFSETS), TypeError, "numpy array"),
        (lambda: colmax.maxsim(Q, T.astype(np.int32), OFFSETS), TypeError, "float16, uint16.*int8"),
        (lambda: colmax.maxsim(Q, T, OFFSETS.astype(np.int32)), TypeError, "int64"),
        (lambda: colmax.maxsim(Q, T), TypeError, "doc_offsets is required"),
        (lambda: colmax.maxsim(Q[0], T, OFFSETS), ValueError, "2-D"),
        (lambda: colmax.maxsim(np.ones((0, 4), np.float32), T, OFFSETS), ValueError, "no tokens"),
        (lambda: colmax.maxsim(np.ones((2, 3), np.float32), T, OFFSETS), ValueError, "dimension mismatch"),
        (lambda: colmax.maxsim(np.ones((4, 2), np.float32).T, T, OFFSETS), ValueError, "C-contiguous"),
        (lambda: colmax.maxsim(Q, np.ones((5, 8), np.float32)[:, ::2], OFFSETS), ValueError, "C-contiguous"),
        (lambda: colmax.maxsim(Q, T, np.array([0, 3, 2, 5], np.int64)), ValueError, "never decrease"),
        (
            lambda: colmax.maxsim(Q, T, np.array([0, 2, 4], np.int64)),
            ValueError,
            "end at the number of token rows",
        ),
        (lambda: colmax.maxsim(Q, T, np.array([1, 2, 5], np.int64)), ValueError, "start at 0"),
        (lambda: colmax.maxsim(Q, T, np.array([], np.int64)), ValueError, "n_docs \\+ 1"),
        (lambda: colmax.maxsim(np.full((2, 4), np.nan, np.float32), T, OFFSETS), ValueError, "NaN"),
        (lambda: colmax.maxsim(Q, T, OFFSETS, candidates=[0, 2]), ValueError, "out of range"),
        (lambda: colmax.maxsim(Q, T, OFFSETS, candidates=[-1]), ValueError, "out of range"),
        (lambda: colmax.maxsim(Q, T, OFFSETS, threads=0), ValueError, "threads"),
        (lambda: colmax.maxsim(Q, T, OFFSETS, threads="2"), TypeError, "threads must be an int"),
        (lambda: colmax.maxsim(Q, T, OFFSETS, threads=2.0), TypeError, "threads must be an int"),
        (lambda: colmax.maxsim(Q, T, OFFSETS, threads=True), TypeError, "threads must be an int"),
        (lambda: colmax.maxsim(Q, T, OFFSETS, threads=2**70), ValueError, "threads is too large"),
        # raw memory is read in the machine's byte order: a swapped array is refused, not misread
        (lambda: colmax.maxsim(Q.astype(">f4"), T, OFFSETS), TypeError, r"byte order.*newbyteorder"),
        (lambda: colmax.maxsim(Q, T.astype(">f4"), OFFSETS), TypeError, "doc_tokens has non-native"),
        (lambda: colmax.maxsim(Q, T, OFFSETS.astype(">i8")), TypeError, "doc_offsets has non-native"),
        (lambda: colmax.maxsim_topk(Q, T, OFFSETS, 0), ValueError, "k must be at least 1"),
        (lambda: colmax.maxsim_topk(Q, T, OFFSETS, 1, candidates=[1, 1]), ValueError, "more than once"),
        (lambda: colmax.maxsim_topk(Q, T, OFFSETS, 1, candidates=np.array([0.0])), TypeError, "int64"),
        (lambda: colmax.maxsim_batch([], T, OFFSETS), ValueError, "no queries"),
        (lambda: colmax.maxsim_batch(Q, T, OFFSETS), TypeError, "sequence"),
        (
            lambda: colmax.maxsim_batch([Q, Q[:, :3].copy()], T, OFFSETS),
            ValueError,
            r"query 1: dimension mismatch",
        ),
        (lambda: colmax.set_active_isa("sse9"), ValueError, "unknown instruction set"),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_no_documents_gives_empty_results():
    empty_tokens, empty_offsets = np.zeros((0, 4), np.float32), np.zeros(1, np.int64)
    assert colmax.maxsim(Q, empty_tokens, empty_offsets).shape == (0,)
    ids, scores = colmax.maxsim_topk(Q, empty_tokens, empty_offsets, 3)
    assert ids.shape == (0,) and scores.shape == (0,)


def test_isa_environment_override():
    run = [sys.executable, "-c", "import colmax; print(colmax.active_isa())"]
    for name in colmax.supported_isas():  # every name this machine runs, the int8-only levels too
        forced = subprocess.run(run, env={"COLMAX_ISA": name}, capture_output=True, text=True, check=True)
        assert forced.stdout.strip() == name
    bad = subprocess.run(run, env={"COLMAX_ISA": "sse9"}, capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown instruction set 'sse9'" in bad.stderr
    assert all(name in bad.stderr for name in colmax.compiled_isas())  # the message lists them all
