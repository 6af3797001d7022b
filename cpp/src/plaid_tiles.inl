// The compressed index's SIMD loops, written once for the float32 policies of maxsim_tiles.inl.
//
// Included by maxsim_<isa>.cpp inside namespace colmax::kernels::<isa>, after maxsim_tiles.inl.
// Beyond that file's policy members, P provides set1(float) and select_gt(a, b, x, y), the
// lane-wise (a > b ? x : y); for the decoder loadu / storeu(float*), add, mul, sum(reg) (a
// horizontal sum) and Buckets<NBITS>: constructed from the codebook's weights, its operator()(packed) returns the
// weights of `lanes` consecutive dimensions whose buckets start at byte `packed`.
//
// assign and centroid_scores reuse the MaxSim register tiles with the roles fixed: the rows to
// score lie across SIMD lanes (prepare_query transposes them) and centroids are the broadcast
// "document" rows.

// Rows assigned per pass over the centroids: every centroid tile, read once from memory, serves
// all of their query blocks from L1, while their transposed table (rows x dim floats) stays in L2.
constexpr std::int64_t kAssignRows = 256;

// Running max and argmax per lane; the index travels as a float (exact below 2^24). Tile rows
// fold in ascending order with a strict comparison, so ties keep the lower index and the
// repeated last row of a short tile (an identical score) never replaces its original.
template <class P, int NQV>
COLMAX_ALWAYS_INLINE void fold_argmax(const typename P::reg (&acc)[P::tile_rows][NQV], std::int64_t first_index,
                                      float* best, float* index) {
  constexpr int L = P::lanes;
  COLMAX_UNROLL for (int v = 0; v < NQV; ++v) {
    typename P::reg b = P::load_f(best + v * L);
    typename P::reg i = P::load_f(index + v * L);
    COLMAX_UNROLL for (int t = 0; t < P::tile_rows; ++t) {
      const typename P::reg candidate = P::set1(static_cast<float>(first_index + t));
      i = P::select_gt(acc[t][v], b, candidate, i);
      b = P::select_gt(acc[t][v], b, acc[t][v], b);
    }
    P::store_f(best + v * L, b);
    P::store_f(index + v * L, i);
  }
}

// Points rows at centroids [c0, c0 + tile_rows), repeating the last one past the end, and
// prefetch at the tile after.
template <class P>
COLMAX_ALWAYS_INLINE void centroid_tile(const float* centroids, std::int64_t n_centroids, std::int64_t dim,
                                        std::int64_t c0, const float** rows, const char** prefetch) {
  for (int t = 0; t < P::tile_rows; ++t) {
    rows[t] = centroids + std::min<std::int64_t>(c0 + t, n_centroids - 1) * dim;
    prefetch[t] =
        reinterpret_cast<const char*>(centroids + std::min<std::int64_t>(c0 + t + P::tile_rows, n_centroids - 1) * dim);
  }
}

template <class P>
void assign_rows(const float* x, std::int64_t n, std::int64_t dim, const float* centroids, std::int64_t n_centroids,
                 std::int32_t* codes, float* best_out) {
  constexpr int NT = P::tile_rows;
  const std::int64_t bytes_per_step = sizeof(float);
  for (std::int64_t r0 = 0; r0 < n; r0 += kAssignRows) {
    const std::int64_t rows_here = std::min(kAssignRows, n - r0);
    const PreparedQuery<P> prepared = prepare_query<P>({x + r0 * dim, rows_here, dim}, dim, 0);
    const std::size_t padded = prepared.blocks.size() * block_tokens<P>();
    AlignedBuffer<float> best, index;
    best.assign_zero(padded);
    index.assign_zero(padded);
    std::fill(best.data(), best.data() + padded, -std::numeric_limits<float>::infinity());

    const float* rows[NT];
    const char* prefetch[NT];
    for (std::int64_t c0 = 0; c0 < n_centroids; c0 += NT) {
      centroid_tile<P>(centroids, n_centroids, dim, c0, rows, prefetch);
      for (const QueryBlock& blk : prepared.blocks) {
        const float* qt = prepared.table.data() + blk.offset;
        float* b = best.data() + blk.first_token;
        float* i = index.data() + blk.first_token;
        if (blk.nqv == 2) {
          typename P::reg acc[NT][2];
          accumulate<P, 2>(acc, qt, dim, rows, prefetch, bytes_per_step);
          fold_argmax<P, 2>(acc, c0, b, i);
        } else {
          typename P::reg acc[NT][1];
          accumulate<P, 1>(acc, qt, dim, rows, prefetch, bytes_per_step);
          fold_argmax<P, 1>(acc, c0, b, i);
        }
      }
    }
    for (std::int64_t r = 0; r < rows_here; ++r) {
      codes[r0 + r] = static_cast<std::int32_t>(index.data()[r]);
      if (best_out != nullptr) best_out[r0 + r] = best.data()[r];
    }
  }
}

template <class P>
void centroid_scores(const QueryMatrix& q, const float* centroids, std::int64_t n_centroids, std::int64_t nq_pad,
                     float* out) {
  constexpr int NT = P::tile_rows;
  constexpr int L = P::lanes;
  const PreparedQuery<P> prepared = prepare_query<P>(q, q.dim, 0);
  const float* rows[NT];
  const char* prefetch[NT];
  for (std::int64_t c0 = 0; c0 < n_centroids; c0 += NT) {
    centroid_tile<P>(centroids, n_centroids, q.dim, c0, rows, prefetch);
    const int valid = static_cast<int>(std::min<std::int64_t>(NT, n_centroids - c0));
    for (const QueryBlock& blk : prepared.blocks) {
      const float* qt = prepared.table.data() + blk.offset;
      float* dst = out + c0 * nq_pad + blk.first_token;
      if (blk.nqv == 2) {
        typename P::reg acc[NT][2];
        accumulate<P, 2>(acc, qt, q.dim, rows, prefetch, sizeof(float));
        for (int t = 0; t < valid; ++t)
          COLMAX_UNROLL for (int v = 0; v < 2; ++v) P::store_f(dst + t * nq_pad + v * L, acc[t][v]);
      } else {
        typename P::reg acc[NT][1];
        accumulate<P, 1>(acc, qt, q.dim, rows, prefetch, sizeof(float));
        for (int t = 0; t < valid; ++t) P::store_f(dst + t * nq_pad, acc[t][0]);
      }
    }
  }
}

// Lane-wise maxima of up to NV vectors of S rows over a document's tokens.
template <class P, int NV>
COLMAX_ALWAYS_INLINE void max_rows(const float* s, std::int64_t nq_pad, const std::uint16_t* codes, std::int64_t begin,
                                   std::int64_t end, float* maxes) {
  constexpr int L = P::lanes;
  typename P::reg m[NV];
  COLMAX_UNROLL for (int v = 0; v < NV; ++v) m[v] = P::set1(-std::numeric_limits<float>::infinity());
  for (std::int64_t t = begin; t < end; ++t) {
    const float* row = s + static_cast<std::int64_t>(codes[t]) * nq_pad;
    COLMAX_UNROLL for (int v = 0; v < NV; ++v) m[v] = P::max(m[v], P::load_f(row + v * L));
  }
  COLMAX_UNROLL for (int v = 0; v < NV; ++v) P::store_f(maxes + v * L, m[v]);
}

template <class P>
void approx_scores(const float* s, std::int64_t nq, std::int64_t nq_pad, const std::uint16_t* codes,
                   const std::int64_t* offsets, const std::int64_t* ids, std::int64_t count, float* out) {
  constexpr int L = P::lanes;
  constexpr int kVectors = 4;  // query-token vectors per pass over a document's tokens
  AlignedBuffer<float> maxes;
  maxes.assign_zero(static_cast<std::size_t>(nq_pad));
  for (std::int64_t b = 0; b < count; ++b) {
    const std::int64_t begin = offsets[ids[b]], end = offsets[ids[b] + 1];
    if (begin == end) {
      out[b] = -std::numeric_limits<float>::infinity();
      continue;
    }
    for (std::int64_t q0 = 0; q0 < nq_pad; q0 += kVectors * L) {
      const float* sq = s + q0;
      float* mq = maxes.data() + q0;
      switch (std::min<std::int64_t>(kVectors, (nq_pad - q0) / L)) {
        case 1: max_rows<P, 1>(sq, nq_pad, codes, begin, end, mq); break;
        case 2: max_rows<P, 2>(sq, nq_pad, codes, begin, end, mq); break;
        case 3: max_rows<P, 3>(sq, nq_pad, codes, begin, end, mq); break;
        default: max_rows<P, kVectors>(sq, nq_pad, codes, begin, end, mq); break;
      }
    }
    float score = 0.0f;
    for (std::int64_t i = 0; i < nq; ++i) score += maxes.data()[i];
    out[b] = score;
  }
}

// Rows ahead whose centroid the decoder prefetches.
constexpr std::int64_t kCentroidAhead = 2;

// Rows [0, n) decoded into out, `lanes` dimensions per step (the last dim % lanes one at a time),
// then scaled to unit length when spec.normalize.
template <class P, int NBITS>
void decode_rows(const DecodeSpec& spec, const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n,
                 float* out) {
  constexpr int L = P::lanes, per_byte = 8 / NBITS;
  constexpr unsigned mask = (1u << NBITS) - 1;
  const std::int64_t dim = spec.dim, bytes = dim * NBITS / 8, full = dim / L * L;
  const typename P::template Buckets<NBITS> buckets(spec.weights);
  for (std::int64_t r = 0; r < n; ++r) {
    const float* c = spec.centroids + static_cast<std::int64_t>(codes[r]) * dim;
    const std::uint8_t* in = residuals + r * bytes;
    float* o = out + r * dim;
    // Centroid rows come from L2 or L3 (a 2,048 x 384 codebook is 3 MB), one after another: fetch
    // the next distinct one while this row decodes.
    if (r + kCentroidAhead < n && codes[r + kCentroidAhead] != codes[r + kCentroidAhead - 1]) {
      const char* next = reinterpret_cast<const char*>(spec.centroids + codes[r + kCentroidAhead] * dim);
      for (std::int64_t b = 0; b < dim * 4; b += 64) _mm_prefetch(next + b, _MM_HINT_T0);
    }
    typename P::reg squares = P::set1(0.0f);
    for (std::int64_t j = 0; j < full; j += L) {
      const typename P::reg v = P::add(P::loadu(c + j), buckets(in + j / per_byte));
      P::storeu(o + j, v);
      squares = P::madd(squares, v, v);
    }
    float total = P::sum(squares);
    for (std::int64_t j = full; j < dim; ++j) {
      o[j] = c[j] + spec.weights[(in[j / per_byte] >> (j % per_byte * NBITS)) & mask];
      total += o[j] * o[j];
    }
    if (!spec.normalize || total <= 0.0f) continue;
    const float scale = 1.0f / std::sqrt(total);
    const typename P::reg inv = P::set1(scale);
    for (std::int64_t j = 0; j < full; j += L) P::storeu(o + j, P::mul(P::loadu(o + j), inv));
    for (std::int64_t j = full; j < dim; ++j) o[j] *= scale;
  }
}

template <class P>
void decode(const DecodeSpec& spec, const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n,
            float* out) {
  switch (spec.nbits) {
    case 1: decode_rows<P, 1>(spec, codes, residuals, n, out); break;
    case 2: decode_rows<P, 2>(spec, codes, residuals, n, out); break;
    case 4: decode_rows<P, 4>(spec, codes, residuals, n, out); break;
    default: decode_rows<P, 8>(spec, codes, residuals, n, out); break;
  }
}

template <class P>
constexpr PlaidKernels plaid_kernels() {
  return {assign_rows<P>, centroid_scores<P>, approx_scores<P>, decode<P>};
}
