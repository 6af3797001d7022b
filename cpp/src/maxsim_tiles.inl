// The register-blocked MaxSim loop, written once for every SIMD instruction set.
//
// Included only by maxsim_<isa>.cpp, *inside* namespace colmax::kernels::<isa>, after that file
// defines its vector policies. Each inclusion is compiled with its own ISA flags and lives in
// its own namespace, so instantiations never merge across instruction sets.
//
// Blocking: a tile of P::tile_rows document tokens meets a block of up to 2 vector registers of
// query tokens (query tokens lie across SIMD lanes). Per step k of the dot product the block's
// query values are loaded once and each document token's value is broadcast once, feeding
// tile_rows x NQV fused multiply-adds whose accumulators never leave registers. The query is
// stored transposed (qt[k][token]) so its loads are unit-stride; the tile's rows are prefetched
// one tile ahead while the current one is computed. Running maxima per query token live in a
// small per-block buffer between tiles, so a document tile is read once for all queries.
//
// A vector policy P provides:
//   acc (accumulators), reg (float32 vectors), oper (multiply operands), lanes, tile_rows,
//   quantized, q_elem (query table element), d_elem (document step element), steps(dim),
//   zero() -> acc, load_q(const q_elem*), bcast_d(const d_elem*), madd(acc, q, d) -> acc + q*d,
//   paired (true: madd2(acc, q, d, r, e) -> acc + q*d + r*e takes steps two at a time instead),
//   load_f(const float*), store_f(float*, reg), max(reg, reg);
//   float policies (acc = reg): pack_query(row, step, dim), and widen_f16 / widen_bf16
//   (const uint16_t*, float*, n) when they score half-precision documents;
//   quantized (int8) policies: mul(reg, reg), load_i(const int32_t*) -> acc,
//   dequant(acc, scale) -> float32(acc) * scale, and bias_rows(in, out, n, dim, stride) writing
//   n rows of dim bytes (back to back in `in`) as each byte + 128, `stride` bytes apart in `out`.
// A step is one dimension for float32 kernels, a pair of dimensions for bf16 dot products and
// four for int8 ones.
//
// int8: a query token is quantized to `levels` (kQueryLevels; a signed operand, four bytes per lane and
// step); document rows are copied to a tile scratch as unsigned bytes (value + 128), the operand
// order of vpdpbusd / vpmaddubsw. The bias adds 128 * sum_k q8[k] to every dot product of token
// i, a per-lane constant removed before the scale: exact integers, so every instruction set
// gives the bits of the scalar specification.

// Query tokens handled by one block: two vector registers' worth.
template <class P>
constexpr int block_tokens() {
  return 2 * P::lanes;
}

// One query, transposed and zero-padded per block: block b covers tokens
// [b * block_tokens, +n_tokens) and owns steps x (nqv * lanes) q_elem at `offset`.
struct QueryBlock {
  std::int64_t first_token;
  int n_tokens;
  int nqv;
  std::size_t offset;
};

template <class P>
struct PreparedQuery {
  std::vector<QueryBlock> blocks;
  AlignedBuffer<typename P::q_elem> table;
  std::size_t runmax_offset;  // where this query's running maxima start in the shared buffer
  std::size_t lanes;          // running maxima it owns: its blocks' lanes, padding included
  // quantized policies, per lane like the running maxima: -128 * sum_k q8[k], and the token's scale
  AlignedBuffer<std::int32_t> correction;
  AlignedBuffer<float> token_scale;
};

// One step s, or for policies whose multiply-accumulate takes two steps (P::paired) steps s
// and s + 1.
template <class P, int NQV>
COLMAX_ALWAYS_INLINE void tile_step(typename P::acc (&acc)[P::tile_rows][NQV], const typename P::q_elem* qt,
                                    const typename P::d_elem* const* rows, std::int64_t s) {
  constexpr std::int64_t width = NQV * P::lanes;
  typename P::oper q[NQV];
  COLMAX_UNROLL for (int v = 0; v < NQV; ++v) q[v] = P::load_q(qt + s * width + v * P::lanes);
  if constexpr (P::paired) {
    typename P::oper r[NQV];
    COLMAX_UNROLL for (int v = 0; v < NQV; ++v) r[v] = P::load_q(qt + (s + 1) * width + v * P::lanes);
    COLMAX_UNROLL for (int t = 0; t < P::tile_rows; ++t) {
      const typename P::oper d = P::bcast_d(rows[t] + s), e = P::bcast_d(rows[t] + s + 1);
      COLMAX_UNROLL for (int v = 0; v < NQV; ++v) acc[t][v] = P::madd2(acc[t][v], q[v], d, r[v], e);
    }
  } else {
    COLMAX_UNROLL for (int t = 0; t < P::tile_rows; ++t) {
      const typename P::oper d = P::bcast_d(rows[t] + s);
      COLMAX_UNROLL for (int v = 0; v < NQV; ++v) acc[t][v] = P::madd(acc[t][v], q[v], d);
    }
  }
}

// The dot products of one tile of document rows with one query block, into `out`: they start
// at zero or, for quantized policies, at the block's lanes of `init` (the bias correction).
// Never inlined, and its accumulators are local: inlined into the callers' epilogues, GCC 12
// kept the int8 accumulators of the VNNI kernels in the wrong registers, adding a register copy
// per multiply-add (18 per 20 vpdpbusd, and a spill) inside the hottest loop. Alone, the loop
// holds only its multiply-adds and loads; the accumulators leave through memory once per tile.
template <class P, int NQV>
__attribute__((noinline)) void accumulate(typename P::acc (&out)[P::tile_rows][NQV], const typename P::q_elem* qt,
                                          std::int64_t steps, const typename P::d_elem* const* rows,
                                          const char* const* prefetch, std::int64_t prefetch_bytes_per_step,
                                          const std::int32_t* init = nullptr) {
  constexpr int NT = P::tile_rows;
  typename P::acc acc[NT][NQV];
  typename P::acc start[NQV];
  COLMAX_UNROLL for (int v = 0; v < NQV; ++v) {
    if constexpr (P::quantized)
      start[v] = P::load_i(init + v * P::lanes);
    else
      start[v] = P::zero();
  }
  COLMAX_UNROLL for (int t = 0; t < NT; ++t) COLMAX_UNROLL for (int v = 0; v < NQV; ++v) acc[t][v] = start[v];

  // Steps in groups covering one 64-byte line of each source row, prefetching the next tile.
  // Paired policies advance two steps at a time (their steps(dim) is even).
  constexpr std::int64_t stride = P::paired ? 2 : 1;
  const std::int64_t group = std::max<std::int64_t>(stride, 64 / prefetch_bytes_per_step / stride * stride);
  std::int64_t s = 0;
  for (; s + group <= steps; s += group) {
    COLMAX_UNROLL for (int t = 0; t < NT; ++t) _mm_prefetch(prefetch[t] + s * prefetch_bytes_per_step, _MM_HINT_T0);
    for (std::int64_t u = 0; u < group; u += stride) tile_step<P, NQV>(acc, qt, rows, s + u);
  }
  for (; s < steps; s += stride) tile_step<P, NQV>(acc, qt, rows, s);
  COLMAX_UNROLL for (int t = 0; t < NT; ++t) COLMAX_UNROLL for (int v = 0; v < NQV; ++v) out[t][v] = acc[t][v];
}

// Folds one tile of document rows into the running maxima of one query block. Quantized
// policies start from the block's bias `correction` and scale each similarity by its row's
// `row_scale` first; their maxima are taken as a tree (max is exact, and the sums that follow
// start from +0, so the order cannot change a score's bits for finite inputs).
template <class P, int NQV>
COLMAX_ALWAYS_INLINE void tile(const typename P::q_elem* qt, std::int64_t steps, const typename P::d_elem* const* rows,
                               const char* const* prefetch, std::int64_t prefetch_bytes_per_step, float* runmax,
                               const std::int32_t* correction, const float* row_scale) {
  constexpr int NT = P::tile_rows;
  constexpr int L = P::lanes;
  typename P::acc acc[NT][NQV];
  accumulate<P, NQV>(acc, qt, steps, rows, prefetch, prefetch_bytes_per_step, correction);
  COLMAX_UNROLL for (int v = 0; v < NQV; ++v) {
    typename P::reg m = P::load_f(runmax + v * L);
    if constexpr (P::quantized) {
      typename P::reg x[NT];
      COLMAX_UNROLL for (int t = 0; t < NT; ++t) x[t] = P::dequant(acc[t][v], row_scale[t]);
      COLMAX_UNROLL for (int w = 1; w < NT; w *= 2) COLMAX_UNROLL for (int t = 0; t + w < NT; t += 2 * w) x[t] =
          P::max(x[t], x[t + w]);
      m = P::max(x[0], m);
    } else {
      COLMAX_UNROLL for (int t = 0; t < NT; ++t) m = P::max(m, acc[t][v]);
    }
    P::store_f(runmax + v * L, m);
  }
}

// Four quantized values of a row as one 32-bit lane, zero past the row's end.
inline std::uint32_t pack_bytes(const std::int8_t* row, std::int64_t s, std::int64_t dim) {
  std::uint32_t lane = 0;
  for (std::int64_t k = 4 * s; k < std::min(4 * s + 4, dim); ++k)
    lane |= std::uint32_t(std::uint8_t(row[k])) << (8 * (k - 4 * s));
  return lane;
}

template <class P>
PreparedQuery<P> prepare_query(const QueryMatrix& q, std::int64_t steps, std::size_t runmax_offset,
                               int levels = kQueryLevels) {
  constexpr int L = P::lanes;
  PreparedQuery<P> prepared;
  prepared.runmax_offset = runmax_offset;
  std::size_t table_size = 0, lanes = 0;
  for (std::int64_t first = 0; first < q.n_tokens; first += block_tokens<P>()) {
    const int n = static_cast<int>(std::min<std::int64_t>(block_tokens<P>(), q.n_tokens - first));
    const int nqv = (n + L - 1) / L;
    prepared.blocks.push_back({first, n, nqv, table_size});
    table_size += static_cast<std::size_t>(steps) * nqv * L;
    lanes += static_cast<std::size_t>(nqv) * L;
  }
  prepared.lanes = lanes;
  prepared.table.assign_zero(table_size);
  std::vector<std::int8_t> row8;
  if constexpr (P::quantized) {
    prepared.correction.assign_zero(lanes);
    prepared.token_scale.assign_zero(lanes);
    row8.resize(static_cast<std::size_t>(q.dim));
  }
  for (const QueryBlock& b : prepared.blocks) {
    typename P::q_elem* dst = prepared.table.data() + b.offset;
    const int width = b.nqv * L;
    for (int j = 0; j < b.n_tokens; ++j) {
      const float* row = q.data + (b.first_token + j) * q.dim;
      if constexpr (P::quantized) {
        const std::size_t lane = static_cast<std::size_t>(b.first_token + j);
        prepared.token_scale.data()[lane] = quantize_row(row, q.dim, levels, row8.data());
        std::int32_t sum = 0;
        for (std::int8_t v : row8) sum += v;
        prepared.correction.data()[lane] = -128 * sum;
        for (std::int64_t s = 0; s < steps; ++s) dst[s * width + j] = pack_bytes(row8.data(), s, q.dim);
      } else {
        for (std::int64_t s = 0; s < steps; ++s) dst[s * width + j] = P::pack_query(row, s, q.dim);
      }
    }
  }
  return prepared;
}

// How far ahead score_batch prefetches document rows, in bytes: a float32 tile of 128 dimensions.
constexpr std::int64_t kPrefetchBytes = 5120;

// How document rows reach the tile: used in place, widened to float32 into a scratch tile, or
// (int8) biased to unsigned bytes into a scratch tile.
enum class RowSource { direct, widen_f16, widen_bf16, bias_i8 };

template <class P, RowSource source>
void score_batch(const Batch& batch) {
  constexpr int NT = P::tile_rows;
  using d_elem = typename P::d_elem;
  const DocMatrix& docs = *batch.docs;
  const std::int64_t dim = docs.dim;
  const std::int64_t steps = P::steps(dim);
  const std::size_t src_row_bytes = dtype_size(docs.dtype) * static_cast<std::size_t>(dim);
  const auto* src = static_cast<const char*>(docs.data);

  std::vector<PreparedQuery<P>> queries;
  std::size_t runmax_size = 0;
  for (std::int64_t qi = 0; qi < batch.n_queries; ++qi) {
    queries.push_back(prepare_query<P>(batch.queries[qi], steps, runmax_size));
    runmax_size += queries.back().lanes;
  }
  AlignedBuffer<float> runmax;
  runmax.assign_zero(runmax_size);
  // Scratch rows are `steps` elements apart; int8 rows past dim stay zero (zero query values).
  AlignedBuffer<d_elem> scratch;
  if constexpr (source != RowSource::direct) scratch.assign_zero(static_cast<std::size_t>(NT * steps));

  // Rows are prefetched a tile ahead, or further when a tile is too short to cover the memory
  // latency: at least kPrefetchBytes ahead (int8 rows of 128 bytes: four tiles).
  const std::int64_t ahead = std::max<std::int64_t>(NT, kPrefetchBytes / static_cast<std::int64_t>(src_row_bytes));
  // source bytes per step, for the prefetch addresses (a paired policy's padding step may have none)
  const std::int64_t per_step = std::max<std::int64_t>(static_cast<std::int64_t>(src_row_bytes) / steps, 1);
  const d_elem* rows[NT];
  const char* prefetch[NT];
  float row_scale[NT] = {};
  for (std::int64_t b = 0; b < batch.count; ++b) {
    const std::int64_t d = batch.doc(b);
    const std::int64_t begin = docs.offsets[d], end = docs.offsets[d + 1];
    if (begin == end) {
      for (std::int64_t qi = 0; qi < batch.n_queries; ++qi)
        batch.out[qi * batch.out_stride + b] = -std::numeric_limits<float>::infinity();
      continue;
    }
    for (std::size_t i = 0; i < runmax_size; ++i) runmax.data()[i] = -std::numeric_limits<float>::infinity();

    for (std::int64_t t0 = begin; t0 < end; t0 += NT) {
      // A short last tile repeats its last row: max is idempotent, so duplicates change nothing.
      const int valid = static_cast<int>(std::min<std::int64_t>(NT, end - t0));
      if constexpr (source == RowSource::bias_i8) {
        // The tile's rows lie back to back in the source: one pass biases them into the scratch.
        P::bias_rows(reinterpret_cast<const std::int8_t*>(src + t0 * src_row_bytes),
                     reinterpret_cast<std::uint8_t*>(scratch.data()), valid, dim, steps * 4);
      }
      for (int t = 0; t < NT; ++t) {
        const int r = std::min(t, valid - 1);
        const std::int64_t row = t0 + r;
        prefetch[t] = src + static_cast<std::size_t>(t0 + t + ahead) * src_row_bytes;
        const char* row_bytes = src + static_cast<std::size_t>(row) * src_row_bytes;
        if constexpr (P::quantized) row_scale[t] = docs.scales[row];
        if constexpr (source == RowSource::direct) {
          rows[t] = reinterpret_cast<const d_elem*>(row_bytes);
        } else if constexpr (source == RowSource::bias_i8) {
          rows[t] = scratch.data() + static_cast<std::size_t>(r) * steps;
        } else if (t < valid) {
          d_elem* dst = scratch.data() + static_cast<std::size_t>(t) * steps;
          const auto* in = reinterpret_cast<const std::uint16_t*>(row_bytes);
          if constexpr (source == RowSource::widen_f16)
            P::widen_f16(in, dst, dim);
          else
            P::widen_bf16(in, dst, dim);
          rows[t] = dst;
        } else {
          rows[t] = rows[t - 1];
        }
      }
      for (const PreparedQuery<P>& q : queries) {
        for (const QueryBlock& blk : q.blocks) {
          const auto* qt = q.table.data() + blk.offset;
          float* rm = runmax.data() + q.runmax_offset + blk.first_token;
          const std::int32_t* correction = P::quantized ? q.correction.data() + blk.first_token : nullptr;
          if (blk.nqv == 2)
            tile<P, 2>(qt, steps, rows, prefetch, per_step, rm, correction, row_scale);
          else
            tile<P, 1>(qt, steps, rows, prefetch, per_step, rm, correction, row_scale);
        }
      }
    }
    for (std::int64_t qi = 0; qi < batch.n_queries; ++qi) {
      const PreparedQuery<P>& q = queries[qi];
      float* rm = runmax.data() + q.runmax_offset;
      if constexpr (P::quantized)  // s_i * max_j(...), as a vector product: never fused into the sum
        for (std::size_t i = 0; i < q.lanes; i += P::lanes)
          P::store_f(rm + i, P::mul(P::load_f(rm + i), P::load_f(q.token_scale.data() + i)));
      float score = 0.0f;
      for (std::int64_t i = 0; i < batch.queries[qi].n_tokens; ++i) score += rm[i];
      batch.out[qi * batch.out_stride + b] = score;
    }
  }
}

// Entry point of an ISA whose policy P multiplies float32: every float storage dtype is widened
// to it (int8 documents go to the ISA's quantized policy instead).
template <class P>
void score_widening(const Batch& batch) {
  switch (batch.docs->dtype) {
    case DType::f32: score_batch<P, RowSource::direct>(batch); break;
    case DType::f16: score_batch<P, RowSource::widen_f16>(batch); break;
    case DType::bf16: score_batch<P, RowSource::widen_bf16>(batch); break;
    case DType::i8: break;
  }
}
