// plaid_residual.hpp's scoring with the int8 register tiles of maxsim_tiles.inl.
//
// Included by the int8 kernel files (maxsim_avx2.cpp, maxsim_avxvnni.cpp, maxsim_avx512vnni.cpp)
// inside namespace colmax::kernels::<isa>, after maxsim_tiles.inl, for their quantized policy P.
// Beyond maxsim_tiles.inl's members, P provides to_float(acc), add(reg, reg), set1(float),
// spread(book, packed, out) (plaid_residual.hpp's spread_row) and row_dots(biased, c8, dim, cross,
// self) (the exact <K, C8> and <K, K> of a biased row).
//
// A tile's rows are spread from their packed residuals into the scratch the tile reads (the
// biased bytes are the unsigned operand as they are), their norms taken from the int8 centroid
// rows, and the epilogue adds stage (a)'s <q_i, C[c]> before the row's 1 / |x|.

template <class P, int NQV>
COLMAX_ALWAYS_INLINE void residual_tile(const typename P::q_elem* qt, std::int64_t steps,
                                        const typename P::d_elem* const* rows, const char* const* prefetch,
                                        std::int64_t prefetch_bytes_per_step, const std::int32_t* correction,
                                        const float* weight, const float* const* table_rows, const float* inv,
                                        float* runmax) {
  constexpr int NT = P::tile_rows;
  constexpr int L = P::lanes;
  typename P::acc acc[NT][NQV];
  accumulate<P, NQV>(acc, qt, steps, rows, prefetch, prefetch_bytes_per_step, correction);
  COLMAX_UNROLL for (int v = 0; v < NQV; ++v) {
    const typename P::reg w = P::load_f(weight + v * L);
    typename P::reg x[NT];
    COLMAX_UNROLL for (int t = 0; t < NT; ++t) x[t] =
        P::mul(P::add(P::mul(P::to_float(acc[t][v]), w), P::load_f(table_rows[t] + v * L)), P::set1(inv[t]));
    COLMAX_UNROLL for (int u = 1; u < NT; u *= 2) COLMAX_UNROLL for (int t = 0; t + u < NT; t += 2 * u) x[t] =
        P::max(x[t], x[t + u]);
    P::store_f(runmax + v * L, P::max(x[0], P::load_f(runmax + v * L)));
  }
}

template <class P>
void score_residuals(const ResidualBatch& batch) {
  constexpr int NT = P::tile_rows;
  const ResidualBook& book = *batch.book;
  const std::int64_t dim = book.dim, steps = P::steps(dim), row_bytes = dim * book.nbits / 8;
  const PreparedQuery<P> q = prepare_query<P>(*batch.query, steps, 0, kResidualQueryLevels);
  AlignedBuffer<float> weight, runmax;  // per lane: s_i * k, and the running maxima
  weight.assign_zero(q.lanes);
  runmax.assign_zero(q.lanes);
  for (std::size_t i = 0; i < q.lanes; ++i) weight.data()[i] = q.token_scale.data()[i] * book.weight_scale;
  AlignedBuffer<typename P::d_elem> scratch;  // rows `steps` elements apart, zero past dim
  scratch.assign_zero(static_cast<std::size_t>(NT * steps));
  // the packed rows of a tile are short: prefetch a few tiles ahead (kPrefetchBytes)
  const std::int64_t ahead = std::max<std::int64_t>(NT, kPrefetchBytes / std::max<std::int64_t>(row_bytes, 1));
  const typename P::d_elem* rows[NT];
  const char* prefetch[NT];
  const float* table_rows[NT];
  float inv[NT];
  for (std::int64_t b = 0; b < batch.count; ++b) {
    const std::int64_t begin = batch.offsets[b], end = batch.offsets[b + 1];
    if (begin == end) {
      batch.out[b] = -std::numeric_limits<float>::infinity();
      continue;
    }
    std::fill(runmax.data(), runmax.data() + q.lanes, -std::numeric_limits<float>::infinity());
    const std::uint8_t* packed = batch.residuals[b];
    if (b + 1 < batch.count) {  // the next document's rows lie elsewhere: start fetching its first ones
      const auto* next = reinterpret_cast<const char*>(batch.residuals[b + 1]);
      const std::int64_t bytes = std::min(batch.offsets[b + 2] - batch.offsets[b + 1], ahead) * row_bytes;
      for (std::int64_t i = 0; i < bytes; i += 64) _mm_prefetch(next + i, _MM_HINT_T0);
    }
    for (std::int64_t t0 = begin; t0 < end; t0 += NT) {
      // A short last tile repeats its last row: max is idempotent, so duplicates change nothing.
      const int valid = static_cast<int>(std::min<std::int64_t>(NT, end - t0));
      for (int t = 0; t < NT; ++t) {
        const int r = std::min(t, valid - 1);
        auto* biased = reinterpret_cast<std::uint8_t*>(scratch.data() + static_cast<std::size_t>(r) * steps);
        const std::uint16_t code = batch.codes[t0 + r];
        if (t < valid) {
          P::spread(book, packed + (t0 - begin + t) * row_bytes, biased);
          inv[t] = 1.0f;
          if (book.normalize) {
            std::int32_t cross, self;
            P::row_dots(biased, book.centroids8 + code * dim, dim, cross, self);
            inv[t] = residual_inv_norm(book, code, cross, self);
          }
        } else {
          inv[t] = inv[r];
        }
        rows[t] = scratch.data() + static_cast<std::size_t>(r) * steps;
        table_rows[t] = book.table + code * book.nq_pad;
        prefetch[t] = reinterpret_cast<const char*>(packed + (t0 - begin + t + ahead) * row_bytes);
      }
      for (const QueryBlock& blk : q.blocks) {
        const auto* qt = q.table.data() + blk.offset;
        const std::int64_t first = blk.first_token;
        const float* rows_of_table[NT];
        for (int t = 0; t < NT; ++t) rows_of_table[t] = table_rows[t] + first;
        const std::int64_t per_step = std::max<std::int64_t>(row_bytes / steps, 1);
        if (blk.nqv == 2)
          residual_tile<P, 2>(qt, steps, rows, prefetch, per_step, q.correction.data() + first, weight.data() + first,
                              rows_of_table, inv, runmax.data() + first);
        else
          residual_tile<P, 1>(qt, steps, rows, prefetch, per_step, q.correction.data() + first, weight.data() + first,
                              rows_of_table, inv, runmax.data() + first);
      }
    }
    float score = 0.0f;
    for (std::int64_t i = 0; i < batch.query->n_tokens; ++i) score += runmax.data()[i];
    batch.out[b] = score;
  }
}
