"""colmax._core's compressed-index bindings against NumPy references, for every supported kernel."""

from __future__ import annotations

import numpy as np
import pytest
from colmax import _core
from colmax._core import RESIDUAL_QUERY_LEVELS
from int8_model import int8_maxsim, quantize_reference


def unit_rows(a):
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def pack(buckets, nbits):
    """LSB-first: dimension j at bit j * nbits of its row."""
    per_byte = 8 // nbits
    n, dim = buckets.shape
    shifts = (np.arange(per_byte) * nbits).astype(np.uint32)
    grouped = buckets.reshape(n, dim // per_byte, per_byte).astype(np.uint32)
    return (grouped << shifts).sum(axis=2).astype(np.uint8)


def unpack(packed, nbits, dim):
    per_byte = 8 // nbits
    shifts = np.arange(per_byte) * nbits
    return ((packed[:, :, None] >> shifts) & ((1 << nbits) - 1)).reshape(len(packed), dim)


def decode(codes, packed, centroids, weights, nbits, normalize):
    out = centroids[codes] + weights[unpack(packed, nbits, centroids.shape[1])]
    if normalize:
        norms = np.linalg.norm(out.astype(np.float64), axis=1, keepdims=True)
        out = np.where(norms > 0, out / np.where(norms > 0, norms, 1), 0)
    return out.astype(np.float32)


def colmax_quantize(x):
    return _core.quantize_int8(np.ascontiguousarray(x, dtype=np.float32))


def maxsim(query, tokens, offsets):
    q = query.astype(np.float64)
    t = tokens.astype(np.float64)
    return np.array(
        [
            (q @ t[offsets[i] : offsets[i + 1]].T).max(axis=1).sum()
            if offsets[i + 1] > offsets[i]
            else -np.inf
            for i in range(len(offsets) - 1)
        ]
    )


def quantizer(nbits, spread=0.1):
    """Even cutoffs over [-spread, spread] and bucket midpoints: the quantiles of uniform residuals."""
    edges = np.linspace(-spread, spread, 2**nbits + 1)
    return edges[1:-1].astype(np.float32), ((edges[:-1] + edges[1:]) / 2).astype(np.float32)


@pytest.mark.parametrize(("dim", "n_centroids"), [(1, 3), (7, 37), (128, 23), (130, 11), (384, 17)])
def test_kmeans_assign_matches_numpy(isa, rng, dim, n_centroids):
    x = rng.uniform(-1, 1, (300, dim)).astype(np.float32)
    centroids = rng.uniform(-1, 1, (n_centroids, dim)).astype(np.float32)
    codes, best = _core.kmeans_assign(x, centroids, threads=2)
    assert codes.dtype == np.int32 and best.dtype == np.float32
    scores = x.astype(np.float64) @ centroids.astype(np.float64).T
    top = scores.max(axis=1)
    tol = 1e-5 * dim + 1e-6
    np.testing.assert_allclose(best, top, atol=tol)
    np.testing.assert_allclose(scores[np.arange(len(x)), codes], top, atol=tol)
    second = np.sort(scores, axis=1)[:, -2] if n_centroids > 1 else np.full(len(x), -np.inf)
    clear = top - second > 2 * tol
    np.testing.assert_array_equal(codes[clear], scores.argmax(axis=1)[clear])


def test_kmeans_assign_ties_go_to_the_lower_index(isa, rng):
    x = rng.uniform(-1, 1, (50, 16)).astype(np.float32)
    centroids = np.tile(rng.uniform(-1, 1, (1, 16)).astype(np.float32), (13, 1))
    codes, _ = _core.kmeans_assign(x, centroids)
    np.testing.assert_array_equal(codes, 0)


def clustered_unit_rows(rng, n, dim, n_clusters):
    centers = rng.standard_normal((n_clusters, dim))
    return unit_rows(centers[rng.integers(0, n_clusters, n)] + 0.5 * rng.standard_normal((n, dim)))


def test_kmeans_assign_probing_every_group_is_exact(isa, rng):
    x = rng.uniform(-1, 1, (500, 24)).astype(np.float32)
    centroids = rng.uniform(-1, 1, (100, 24)).astype(np.float32)  # 10 groups
    exact = _core.kmeans_assign(x, centroids)
    grouped = _core.kmeans_assign(x, centroids, probe_groups=10)
    for want, got in zip(exact, grouped):
        np.testing.assert_array_equal(got, want)


def test_kmeans_assign_grouped_takes_the_best_of_the_probed_groups(isa, rng):
    rows = clustered_unit_rows(rng, 5400, 32, 200)
    x, centroids = rows[:5000], rows[5000:]  # 400 centroids in 20 groups, 3 probed
    codes, best = _core.kmeans_assign(x, centroids, probe_groups=3, threads=2)
    exact_codes, exact_best = _core.kmeans_assign(x, centroids)
    np.testing.assert_allclose(best, np.einsum("ij,ij->i", x, centroids[codes]), atol=1e-5)
    assert np.all(best <= exact_best)
    # groups blind to the rows would hold the nearest centroid for 3 / 20 of them
    assert np.mean(codes == exact_codes) > 0.8
    with pytest.raises(ValueError, match="probe_groups must be at least 1"):
        _core.kmeans_assign(x, centroids, probe_groups=-1)


# dims with and without a tail past the decoder's last 8-dimension SIMD step
@pytest.mark.parametrize(
    ("nbits", "dim"), [(1, 64), (1, 24), (2, 128), (2, 12), (4, 384), (4, 130), (8, 96), (8, 7)]
)
@pytest.mark.parametrize("normalize", [False, True])
def test_compress_and_decompress_match_numpy(isa, rng, nbits, dim, normalize):
    centroids = rng.uniform(-1, 1, (9, dim)).astype(np.float32)
    codes = rng.integers(0, 9, 200).astype(np.uint16)
    x = (centroids[codes] + rng.uniform(-0.1, 0.1, (200, dim))).astype(np.float32)
    cutoffs, weights = quantizer(nbits)
    packed = _core.plaid_compress(x, codes, centroids, cutoffs, nbits, threads=2)
    residual = x - centroids[codes]
    buckets = np.searchsorted(cutoffs, residual, side="right")
    np.testing.assert_array_equal(packed, pack(buckets, nbits))
    decoded = _core.plaid_decompress(codes, packed, centroids, weights, nbits, normalize, threads=2)
    np.testing.assert_allclose(
        decoded, decode(codes, packed, centroids, weights, nbits, normalize), atol=1e-6
    )
    if not normalize:
        assert np.abs(decoded - x).max() <= 0.1 / 2**nbits + 1e-6


def bits(data):
    """A byte array's bits, LSB-first."""
    return np.unpackbits(np.asarray(data, dtype=np.uint8), bitorder="little")


def elias_fano_decode(data, count, universe):
    """docs/format.md's Elias-Fano list, read with NumPy: returns the values and the bytes used."""
    if count == 0:
        return [], 0
    low_bits = int(np.floor(np.log2(universe // count)))
    low_bytes = (count * low_bits + 7) // 8
    high_bits = count + ((universe - 1) >> low_bits)
    low = bits(data[:low_bytes])
    high = bits(data[low_bytes : low_bytes + (high_bits + 7) // 8])
    ones = np.flatnonzero(high)
    assert len(ones) == count and ones[-1] < high_bits
    values = [
        ((int(ones[i]) - i) << low_bits) + sum(int(low[i * low_bits + b]) << b for b in range(low_bits))
        for i in range(count)
    ]
    return values, low_bytes + (high_bits + 7) // 8


@pytest.mark.parametrize("n_centroids", [1, 6, 7, 300, 65536])
def test_doc_codes_follow_the_documented_layout(rng, n_centroids):
    lengths = [3, 0, 5, 1, 9, 2, 40, 8, 16]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    codes = rng.integers(0, min(n_centroids, 6 if n_centroids < 300 else n_centroids), offsets[-1]).astype(
        np.uint16
    )
    order, blobs, blob_offsets = _core.plaid_doc_codes(codes, offsets, n_centroids)
    assert order.dtype == np.int64 and blobs.dtype == np.uint8 and blob_offsets.dtype == np.int64
    assert blob_offsets[0] == 0 and blob_offsets[-1] == len(blobs)
    for d, (lo, hi) in enumerate(zip(offsets[:-1], offsets[1:])):
        # each document's tokens sorted by code, stably, within the document
        np.testing.assert_array_equal(order[lo:hi], lo + np.argsort(codes[lo:hi], kind="stable"))
        stored = codes[order[lo:hi]]
        blob = blobs[blob_offsets[d] : blob_offsets[d + 1]]
        run_bytes = (hi - lo + 7) // 8
        starts = bits(blob[:run_bytes])
        want_starts = np.concatenate([[1], stored[1:] != stored[:-1]]) if hi > lo else []
        np.testing.assert_array_equal(starts[: hi - lo], want_starts)
        assert not starts[hi - lo :].any()
        values, used = elias_fano_decode(blob[run_bytes:], int(starts.sum()), n_centroids)
        assert values == sorted(set(stored.tolist())) and used == len(blob) - run_bytes
    every = np.arange(len(lengths), dtype=np.int64)
    np.testing.assert_array_equal(
        _core.plaid_token_codes(blobs, blob_offsets, offsets, every, n_centroids), codes[order]
    )
    some = np.array([6, 0, 6, 1], dtype=np.int64)
    want = np.concatenate([codes[order[offsets[d] : offsets[d + 1]]] for d in some])
    np.testing.assert_array_equal(
        _core.plaid_token_codes(blobs, blob_offsets, offsets, some, n_centroids), want
    )


def test_build_ivf_matches_naive_lists(rng):
    lengths = [3, 0, 5, 1, 9, 2] * 40
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    codes = rng.integers(0, 6, offsets[-1]).astype(np.uint16)
    _, blobs, blob_offsets = _core.plaid_doc_codes(codes, offsets, 7)
    ivf_offsets, ivf = _core.plaid_build_ivf(blobs, blob_offsets, offsets, 7)
    assert ivf_offsets.dtype == np.int64 and ivf.dtype == np.uint8
    assert _core.plaid_ivf_bytes(ivf_offsets, len(lengths)) == len(ivf)
    at = 0
    for c in range(7):
        want = sorted({d for d in range(len(lengths)) if c in codes[offsets[d] : offsets[d + 1]]})
        assert ivf_offsets[c + 1] - ivf_offsets[c] == len(want)
        values, used = elias_fano_decode(ivf[at:], len(want), len(lengths))
        assert values == want
        at += used
    assert at == len(ivf)


class Corpus:
    """Compressed random documents near their centroids, as the index stores them."""

    def __init__(self, rng, n_docs=50, dim=32, n_centroids=16, nbits=2):
        lengths = rng.integers(1, 15, n_docs)
        lengths[3] = 0
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.centroids = unit_rows(rng.standard_normal((n_centroids, dim)))
        noise = rng.uniform(-1, 1, (self.offsets[-1], dim)).astype(np.float32)
        codes, _ = _core.kmeans_assign(noise, self.centroids)
        # tokens in stored order: each document's sorted by code
        order, self.doc_codes, self.doc_code_offsets = _core.plaid_doc_codes(
            codes.astype(np.uint16), self.offsets, n_centroids
        )
        self.codes, noise = codes[order].astype(np.uint16), noise[order]
        self.x = (self.centroids[self.codes] + 0.1 * noise).astype(np.float32)
        self.nbits = nbits
        cutoffs, self.weights = quantizer(nbits)
        self.residuals = _core.plaid_compress(self.x, self.codes, self.centroids, cutoffs, nbits)
        self.decoded = _core.plaid_decompress(
            self.codes, self.residuals, self.centroids, self.weights, nbits, True
        )
        self.ivf = _core.plaid_build_ivf(self.doc_codes, self.doc_code_offsets, self.offsets, n_centroids)

    def staged_scores(self, query):
        """What staged search scores, in NumPy (cpp/src/plaid_residual.hpp): stage (a)'s
        <q, centroid> plus int8 dot products of the query with the residuals' weights, over
        each row's norm from int8 centroids."""
        dim = self.centroids.shape[1]
        (weights8,), (k,) = quantize_reference(self.weights[None, :], 127)
        residual = weights8[unpack(self.residuals, self.nbits, dim)].astype(np.int64)  # rows x dim
        q8, q_scales = quantize_reference(query, RESIDUAL_QUERY_LEVELS)
        w = (q_scales * k).astype(np.float32)
        table = (self.centroids @ query.T).astype(np.float32)  # n_centroids x nq
        c8, c_scales = quantize_reference(self.centroids, 127)
        norm2 = (self.centroids * self.centroids).sum(axis=1, dtype=np.float32)
        cross_dots = (c8[self.codes] * residual).sum(axis=1).astype(np.float32)
        cross = (c_scales[self.codes] * k).astype(np.float32) * cross_dots
        own = np.float32(k * k) * (residual * residual).sum(axis=1).astype(np.float32)
        squares = (norm2[self.codes] + (cross + cross)) + own
        inv = np.where(squares > 0, 1 / np.sqrt(np.maximum(squares, 1e-30)), 0).astype(np.float32)
        dots = (q8.astype(np.int64) @ residual.T).astype(np.float32)  # nq x rows
        sims = (dots * w[:, None] + table[self.codes].T) * inv[None, :]
        return np.array(
            [
                sims[:, lo:hi].max(axis=1).sum(dtype=np.float32) if hi > lo else -np.inf
                for lo, hi in zip(self.offsets[:-1], self.offsets[1:])
            ],
            dtype=np.float32,
        )

    def segment(self, allowed=None, exact=None, first_pos=0, exact_scales=None):
        stored = (self.doc_codes, self.doc_code_offsets, self.residuals, self.offsets, *self.ivf)
        return (*stored, allowed, exact, exact_scales, first_pos)

    def search(self, query, segments, k, nprobe, ncandidates, **kwargs):
        return _core.plaid_search(
            query, self.centroids, self.weights, self.nbits, True, segments, k, nprobe, ncandidates, **kwargs
        )


def ranked(scores, k):
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return order, scores[order]


def test_search_exhaustive_matches_numpy_and_full_probing_matches_the_int8_model(isa, rng):
    corpus = Corpus(rng)
    query = unit_rows(rng.standard_normal((6, 32)))
    want_ids, want_scores = ranked(maxsim(query, corpus.decoded, corpus.offsets), 10)
    ids, scores = corpus.search(query, [corpus.segment()], 10, 1, 1, exhaustive=True)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-4)
    # staged: every centroid probed, every candidate kept, scored from the residuals
    want_ids, want_scores = ranked(corpus.staged_scores(query), 10)
    staged = corpus.search(query, [corpus.segment()], 10, 16, 50, threads=2)
    np.testing.assert_array_equal(staged[0], want_ids)
    np.testing.assert_allclose(staged[1], want_scores, rtol=1e-5)
    # and those scores are the decompressed rows' within the int8 approximation
    np.testing.assert_allclose(staged[1], maxsim(query, corpus.decoded, corpus.offsets)[staged[0]], atol=0.05)


def test_search_allowed_segments_and_exact_tokens(isa, rng):
    a = Corpus(rng)  # searched twice: once filtered, once whole at position 1000
    query = unit_rows(rng.standard_normal((4, 32)))
    allowed = np.arange(0, 50, 3, dtype=np.int64)
    ids, _ = a.search(query, [a.segment(allowed=allowed), a.segment(first_pos=1000)], 100, 16, 100)
    scores = a.staged_scores(query)
    both = np.concatenate([np.where(np.isin(np.arange(50), allowed), scores, np.nan), scores])
    positions = np.concatenate([np.arange(50), 1000 + np.arange(50)])
    live = ~np.isnan(both) & np.isfinite(both)
    order = np.lexsort((positions[live], -both[live]))
    np.testing.assert_array_equal(ids, positions[live][order][:100])

    exact_ids, exact_scores = a.search(query, [a.segment(exact=a.x.astype(np.float16))], 5, 16, 100)
    want_ids, want_scores = ranked(maxsim(query, a.x.astype(np.float16).astype(np.float32), a.offsets), 5)
    np.testing.assert_array_equal(exact_ids, want_ids)
    np.testing.assert_allclose(exact_scores, want_scores, atol=1e-4)

    values, scales = colmax_quantize(a.x)
    int8_ids, int8_scores = a.search(query, [a.segment(exact=values, exact_scales=scales)], 5, 16, 100)
    want_ids, want_scores = ranked(int8_maxsim(query, values, scales, a.offsets), 5)
    np.testing.assert_array_equal(int8_ids, want_ids)
    np.testing.assert_array_equal(int8_scores, want_scores)


def test_ncandidates_is_one_budget_over_all_segments(isa, rng):
    corpus = Corpus(rng)
    query = unit_rows(rng.standard_normal((5, 32)))
    # every centroid probed: the candidates are all documents with tokens, in both segments
    table = corpus.centroids @ query.T
    approx = np.array(
        [
            table[corpus.codes[lo:hi]].max(axis=0).sum() if hi > lo else -np.inf
            for lo, hi in zip(corpus.offsets[:-1], corpus.offsets[1:])
        ]
    )
    both = np.concatenate([approx, approx])
    positions = np.concatenate([np.arange(50), 500 + np.arange(50)])
    survivors = positions[np.lexsort((positions, -both))[:7]]  # the 7 best by centroid scores
    exact = corpus.staged_scores(query)
    exact_of = dict(zip(positions.tolist(), np.concatenate([exact, exact]).tolist()))
    want = sorted(survivors.tolist(), key=lambda p: (-exact_of[p], p))
    ids, _ = corpus.search(query, [corpus.segment(), corpus.segment(first_pos=500)], 7, 16, 7)
    np.testing.assert_array_equal(ids, want)


def test_search_completes_listed_documents_in_its_last_stage(isa, rng):
    """``complete``: the listed documents' last-stage scores come back beside a ranking that
    they do not change, equal to an exhaustive search's from the residuals (or the copy); it is
    shown the candidates the last stage scores (ncandidates of them, sorted, per segment),
    among them every document the search returns."""
    corpus = Corpus(rng)
    query = unit_rows(rng.standard_normal((5, 32)))
    listed = [np.array([0, 3, 7, 20, 49], dtype=np.int64), np.array([1, 7], dtype=np.int64)]
    calls = []

    def complete(candidates):
        calls.append(candidates)
        return listed

    alone = {"exhaustive": True, "decompress": False}
    for exact in (None, corpus.x.astype(np.float16)):
        segments = [corpus.segment(exact=exact), corpus.segment(exact=exact, first_pos=100)]
        plain = corpus.search(query, segments, 4, 2, 6)
        ids, scores, completed = corpus.search(query, segments, 4, 2, 6, complete=complete, threads=2)
        np.testing.assert_array_equal(ids, plain[0])
        np.testing.assert_array_equal(scores, plain[1])
        shown = calls[-1]
        assert len(shown) == 2 and ids.size <= sum(c.size for c in shown) <= 6
        assert all(c.dtype == np.int64 and np.all(np.diff(c) > 0) for c in shown)
        assert set(ids.tolist()) <= {int(d) + 100 * seg for seg, c in enumerate(shown) for d in c}
        # every document scored alone, as an exhaustive search from the residuals scores it
        want = [
            corpus.search(query, [corpus.segment(allowed=np.array([d]), exact=exact)], 1, 1, 1, **alone)[1]
            for d in np.concatenate(listed).tolist()
        ]
        np.testing.assert_array_equal(completed, np.concatenate(want))  # document 3 has no tokens, too
        # a document the search ranks itself gets the same score in both places
        for pos, score in zip(ids.tolist(), scores.tolist()):
            seg, local = divmod(pos, 100)
            if local in listed[seg].tolist():
                offset = 0 if seg == 0 else listed[0].size
                assert completed[offset + listed[seg].tolist().index(local)] == score
    assert len(calls) == 2  # once per search
    empty = corpus.search(query, [corpus.segment()], 4, 2, 6, complete=lambda _: [np.zeros(0, np.int64)])
    assert empty[2].size == 0


def test_complete_errors_leave_the_search_as_raised(rng):
    corpus = Corpus(rng)
    query = unit_rows(rng.standard_normal((3, 32)))
    segments = [corpus.segment()]

    def fails(_):
        raise KeyError("from the keyword side")

    with pytest.raises(KeyError, match="from the keyword side"):
        corpus.search(query, segments, 4, 2, 6, complete=fails)
    with pytest.raises(TypeError, match="complete must be a function"):
        corpus.search(query, segments, 4, 2, 6, complete=[np.zeros(0, np.int64)])
    with pytest.raises(TypeError, match="one int64 array of local document ids per segment"):
        corpus.search(query, segments, 4, 2, 6, complete=lambda _: [])
    with pytest.raises(TypeError, match="int64"):
        corpus.search(query, segments, 4, 2, 6, complete=lambda _: [np.zeros(2, np.float32)])
    with pytest.raises(ValueError, match="sorted ascending"):
        corpus.search(query, segments, 4, 2, 6, complete=lambda _: [np.array([5, 2], dtype=np.int64)])
    with pytest.raises(ValueError, match="below the segment's 50 documents"):
        corpus.search(query, segments, 4, 2, 6, complete=lambda _: [np.array([50], dtype=np.int64)])
    # the search still works afterwards (no state left behind)
    again = corpus.search(query, segments, 4, 2, 6, complete=lambda _: [np.array([1], dtype=np.int64)])
    assert again[2].size == 1


def staged_search(corpus, query, first_positions, k, nprobe, ncandidates, allowed=None):
    """The staged search in NumPy over copies of one corpus at the given positions."""
    table = corpus.centroids @ query.T  # n_centroids x nq
    probed = np.unique(
        [np.lexsort((np.arange(len(table)), -table[:, i]))[:nprobe] for i in range(query.shape[0])]
    )
    lo, hi = table[probed].min(), table[probed].max()
    byte = np.zeros_like(table, dtype=np.int64)
    byte[probed] = np.rint((table[probed] - lo) * np.float32(255 / (hi - lo)))
    per_doc = [set(corpus.codes[a:b].tolist()) for a, b in zip(corpus.offsets[:-1], corpus.offsets[1:])]
    allowed = set(range(len(per_doc)) if allowed is None else allowed.tolist())
    probed_set = set(probed.tolist())
    local = np.array([d for d, codes in enumerate(per_doc) if codes & probed_set and d in allowed])
    pruned = np.array([byte[sorted(per_doc[d] & probed_set)].max(axis=0).sum() for d in local])
    approx = np.array(
        [table[corpus.codes[corpus.offsets[d] : corpus.offsets[d + 1]]].max(axis=0).sum() for d in local]
    )
    exact = corpus.staged_scores(query)[local]
    positions = np.concatenate([first + local for first in first_positions])
    n = len(first_positions)
    pruned, approx, exact = np.tile(pruned, n), np.tile(approx, n), np.tile(exact, n)
    keep = max(ncandidates, k)
    alive = np.arange(len(positions))
    if len(alive) > 4 * keep:
        alive = alive[np.lexsort((positions[alive], -pruned[alive]))[: 4 * keep]]
    if len(alive) > keep:
        alive = alive[np.lexsort((positions[alive], -approx[alive]))[:keep]]
    top = alive[np.lexsort((positions[alive], -exact[alive]))[:k]]
    return positions[top], exact[top]


def test_stages_match_numpy(isa, rng):
    corpus = Corpus(rng, n_docs=400, n_centroids=64)
    for _ in range(3):
        query = unit_rows(rng.standard_normal((20, 32)))
        for nprobe, ncandidates in ((1, 5), (2, 10), (3, 40)):
            want_ids, want_scores = staged_search(corpus, query, [0, 1000], 10, nprobe, ncandidates)
            ids, scores = corpus.search(
                query, [corpus.segment(), corpus.segment(first_pos=1000)], 10, nprobe, ncandidates
            )
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_allclose(scores, want_scores, atol=1e-4)


def test_stages_match_numpy_over_many_pruning_blocks(isa, rng):
    # a 300-token query makes stage (b)'s blocks 3,264 documents long: 8,000 documents span three,
    # and the deleted documents' bitset is read block by block
    corpus = Corpus(rng, n_docs=8000, n_centroids=64)
    query = unit_rows(rng.standard_normal((300, 32)))
    allowed = np.flatnonzero(rng.random(8000) < 0.7)
    for nprobe, ncandidates in ((1, 20), (2, 200)):
        for kept in (None, allowed):
            want_ids, want_scores = staged_search(corpus, query, [0], 10, nprobe, ncandidates, kept)
            ids, scores = corpus.search(
                query, [corpus.segment(allowed=kept)], 10, nprobe, ncandidates, threads=2
            )
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_allclose(scores, want_scores, rtol=1e-5)


def test_search_results_do_not_depend_on_threads(rng):
    corpus = Corpus(rng, n_docs=300)
    query = unit_rows(rng.standard_normal((20, 32)))
    one = corpus.search(query, [corpus.segment()], 10, 2, 20, threads=1)
    for threads in (2, 5):
        two = corpus.search(query, [corpus.segment()], 10, 2, 20, threads=threads)
        np.testing.assert_array_equal(one[0], two[0])
        np.testing.assert_array_equal(one[1], two[1])


def test_read_only_memmaps_are_accepted(tmp_path, rng):
    corpus = Corpus(rng)
    arrays = {}
    for name in ("codes", "doc_codes", "doc_code_offsets", "residuals", "offsets", "centroids", "weights"):
        np.save(tmp_path / f"{name}.npy", getattr(corpus, name))
        arrays[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
        assert not arrays[name].flags.writeable
    decoded = _core.plaid_decompress(
        arrays["codes"], arrays["residuals"], arrays["centroids"], arrays["weights"], 2, True
    )
    np.testing.assert_array_equal(decoded, corpus.decoded)
    stored = [arrays[name] for name in ("doc_codes", "doc_code_offsets", "residuals", "offsets")]
    segment = (*stored, *corpus.ivf, None, None, None, 0)
    query = unit_rows(rng.standard_normal((3, 32)))
    ids, _ = _core.plaid_search(query, arrays["centroids"], arrays["weights"], 2, True, [segment], 5, 16, 50)
    np.testing.assert_array_equal(ids, corpus.search(query, [corpus.segment()], 5, 16, 50)[0])


def test_wrong_dtypes_raise_type_error_naming_the_fix(rng):
    corpus = Corpus(rng)
    x = rng.uniform(-1, 1, (4, 32)).astype(np.float32)
    with pytest.raises(TypeError, match=r"x must be float32.*astype|dtype=numpy.float32"):
        _core.kmeans_assign(x.astype(np.float64), corpus.centroids)
    with pytest.raises(TypeError, match="codes must be uint16"):
        _core.plaid_compress(x, np.zeros(4, np.int32), corpus.centroids, quantizer(2)[0], 2)
    with pytest.raises(TypeError, match="residuals must be uint8"):
        _core.plaid_decompress(
            corpus.codes, corpus.residuals.astype(np.int16), corpus.centroids, corpus.weights, 2, True
        )
    with pytest.raises(TypeError, match="doc_offsets must be int64"):
        _core.plaid_doc_codes(corpus.codes, corpus.offsets.astype(np.int32), 16)
    with pytest.raises(TypeError, match="doc_codes must be uint8"):
        _core.plaid_build_ivf(corpus.codes, corpus.doc_code_offsets, corpus.offsets, 16)
    with pytest.raises(TypeError, match=r"docs must be a numpy array, got list; .*dtype=numpy.int64"):
        _core.plaid_token_codes(corpus.doc_codes, corpus.doc_code_offsets, corpus.offsets, [0, 1], 16)
    bad = list(corpus.segment())
    bad[5] = bad[5].astype(np.int64)
    with pytest.raises(TypeError, match=r"segments\[0\].ivf must be uint8"):
        corpus.search(x, [tuple(bad)], 3, 1, 10)
    bad = list(corpus.segment())
    bad[7] = corpus.x.astype(np.float64)
    with pytest.raises(TypeError, match="exact_tokens must be float32, float16, uint16"):
        corpus.search(x, [tuple(bad)], 3, 1, 10)
    with pytest.raises(TypeError, match="must be a tuple"):
        corpus.search(x, [corpus.segment()[:5]], 3, 1, 10)
    values, scales = colmax_quantize(corpus.x)
    with pytest.raises(TypeError, match=r"exact_tokens is int8: pass segments\[0\].exact_scales="):
        corpus.search(x, [corpus.segment(exact=values)], 3, 1, 10)
    with pytest.raises(ValueError, match="exact_scales applies"):
        corpus.search(x, [corpus.segment(exact=corpus.x, exact_scales=scales)], 3, 1, 10)
    with pytest.raises(ValueError, match="exact_scales applies only with int8"):
        corpus.search(x, [corpus.segment(exact_scales=scales)], 3, 1, 10)


def test_bad_shapes_and_values_raise_value_error(rng):
    corpus = Corpus(rng)
    x = rng.uniform(-1, 1, (4, 32)).astype(np.float32)
    cutoffs = quantizer(2)[0]
    with pytest.raises(ValueError, match="dimension mismatch"):
        _core.kmeans_assign(x[:, :31].copy(), corpus.centroids)
    with pytest.raises(ValueError, match="nbits must be 1, 2, 4 or 8"):
        _core.plaid_compress(x, corpus.codes[:4], corpus.centroids, cutoffs, 3)
    with pytest.raises(ValueError, match=r"cutoffs must have 2\*\*nbits - 1"):
        _core.plaid_compress(x, corpus.codes[:4], corpus.centroids, cutoffs[:2], 2)
    with pytest.raises(ValueError, match="multiple of 8"):
        _core.plaid_compress(x[:, :3].copy(), corpus.codes[:4], corpus.centroids[:, :3].copy(), cutoffs, 2)
    with pytest.raises(ValueError, match="sorted ascending"):
        _core.plaid_compress(x, corpus.codes[:4], corpus.centroids, cutoffs[::-1].copy(), 2)
    with pytest.raises(ValueError, match="out of range"):
        _core.plaid_compress(x, np.full(4, 16, np.uint16), corpus.centroids, cutoffs, 2)
    with pytest.raises(ValueError, match=r"residuals must have shape \(4, 8\)"):
        _core.plaid_decompress(
            corpus.codes[:4], corpus.residuals[:3], corpus.centroids, corpus.weights, 2, True
        )
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.kmeans_assign(np.asfortranarray(x), corpus.centroids)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        _core.kmeans_assign(x, corpus.centroids, threads=0)
    with pytest.raises(ValueError, match="out of range"):
        _core.plaid_doc_codes(corpus.codes, corpus.offsets, 3)
    with pytest.raises(ValueError, match="damaged"):  # codes read against another codebook size
        _core.plaid_build_ivf(corpus.doc_codes, corpus.doc_code_offsets, corpus.offsets, 3000)
    with pytest.raises(ValueError, match="one entry per document"):
        _core.plaid_build_ivf(corpus.doc_codes, corpus.doc_code_offsets[:-1], corpus.offsets, 16)
    with pytest.raises(ValueError, match="out of range"):
        _core.plaid_token_codes(
            corpus.doc_codes, corpus.doc_code_offsets, corpus.offsets, np.array([50], np.int64), 16
        )
    with pytest.raises(ValueError, match="k must be at least 1"):
        corpus.search(x, [corpus.segment()], 0, 1, 10)
    with pytest.raises(ValueError, match="nprobe must be at least 1"):
        corpus.search(x, [corpus.segment()], 3, 0, 10)
    with pytest.raises(ValueError, match="query has no tokens"):
        corpus.search(x[:0], [corpus.segment()], 3, 1, 10)
    with pytest.raises(ValueError, match="dimension mismatch"):
        corpus.search(x[:, :16].copy(), [corpus.segment()], 3, 1, 10)
    with pytest.raises(ValueError, match="sorted ascending"):
        corpus.search(x, [corpus.segment(allowed=np.array([5, 2], np.int64))], 3, 1, 10)
    with pytest.raises(ValueError, match="out of range"):
        corpus.search(x, [corpus.segment(allowed=np.array([2, 50], np.int64))], 3, 1, 10)
    with pytest.raises(ValueError, match="inverted file holds"):
        bad = list(corpus.segment())
        bad[5] = bad[5][:-1]
        corpus.search(x, [tuple(bad)], 3, 1, 10)
    with pytest.raises(ValueError, match="exact"):
        corpus.search(x, [corpus.segment(exact=corpus.x[:-1])], 3, 1, 10)
    nan_query = x.copy()
    nan_query[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        corpus.search(nan_query, [corpus.segment()], 3, 1, 10)


def test_damaged_codes_and_lists_raise_instead_of_reading_out_of_range(rng):
    corpus = Corpus(rng, n_docs=200)
    query = unit_rows(rng.standard_normal((4, 32)))
    # every bit set: more entries than a list holds, runs where padding must be zero
    bad = list(corpus.segment())
    bad[0] = np.full_like(corpus.doc_codes, 0xFF)
    for exhaustive in (True, False):
        with pytest.raises(ValueError, match=r"stored codes of document .* are damaged"):
            corpus.search(query, [tuple(bad)], 3, 16, 200, exhaustive=exhaustive)
    bad = list(corpus.segment())
    bad[5] = np.full_like(corpus.ivf[1], 0xFF)
    with pytest.raises(ValueError, match=r"inverted list of centroid .* is damaged"):
        corpus.search(query, [tuple(bad)], 3, 16, 200)
    bad = list(corpus.segment())
    shifted = corpus.doc_code_offsets.copy()
    shifted[5] += 1
    bad[1] = shifted
    with pytest.raises(ValueError, match="damaged"):
        corpus.search(query, [tuple(bad)], 3, 1, 10, exhaustive=True)
    # random damage decodes to in-range codes and documents, or raises; never anything else
    for seed in range(20):
        noise = np.random.default_rng(seed)
        bad = list(corpus.segment())
        doc_codes, ivf = corpus.doc_codes.copy(), corpus.ivf[1].copy()
        doc_codes[noise.integers(0, len(doc_codes), 5)] ^= np.uint8(1 << int(noise.integers(8)))
        ivf[noise.integers(0, len(ivf), 5)] ^= np.uint8(1 << int(noise.integers(8)))
        bad[0], bad[5] = doc_codes, ivf
        try:
            ids, _ = corpus.search(query, [tuple(bad)], 5, 16, 200)
        except ValueError as e:
            assert "damaged" in str(e)
        else:
            assert ((ids >= 0) & (ids < 200)).all()
