// AMX MaxSim for bfloat16 documents with a dimension divisible by 32.
//
// A tile multiply (TDPBF16PS) computes a 16 x 16 block of similarities, 16 document tokens by
// 16 query tokens, over 32 dimensions at once: rows of the row-major document matrix load
// straight into the A tile (stride = one row), and each query is prepared once as B tiles in
// the pair-interleaved layout the instruction expects. After all dimension chunks, the C tile
// is stored and its valid rows folded into per-query-token running maxima with AVX-512.
//
// Precision: the query is split into two bfloat16 terms, hi = bf16(q) and lo = bf16(q - hi),
// and both are multiplied in (products are exact in float32), so scores match the float32
// widening kernels to float32 accumulation error rather than bfloat16 rounding of the query.
//
// Tile registers: tmm0-3 accumulators C[document group][query group], tmm4-5 document tiles,
// tmm6-7 query tiles. Other dimensions and storage types use the AVX-512 widening kernel,
// whose precision matches this one.
#include "simd_common.hpp"

namespace colmax::kernels {
namespace {

constexpr int kTileRows = 16;    // document tokens per tile, query tokens per tile column block
constexpr int kChunkDims = 32;   // bfloat16 values in one 64-byte tile row
constexpr int kTileElems = 512;  // bfloat16 values in one 16 x 64-byte tile

struct alignas(64) TileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

// Holds the tile configuration for the lifetime of one kernel call on this thread.
struct TileSession {
  TileSession() {
    TileConfig config;
    for (int t = 0; t < 8; ++t) {
      config.colsb[t] = 64;
      config.rows[t] = kTileRows;
    }
    _tile_loadconfig(&config);
  }
  ~TileSession() { _tile_release(); }
  TileSession(const TileSession&) = delete;
  TileSession& operator=(const TileSession&) = delete;
};

// One query as B tiles: tile (group g, chunk c, term h) starts at ((g * chunks + c) * 2 + h) * 512.
// Row p of a tile holds, for each of the group's 16 tokens n, dims 2p and 2p + 1 of the chunk.
struct TiledQuery {
  AlignedBuffer<std::uint16_t> tiles;
  std::int64_t n_tokens;
  int groups;
  std::size_t runmax_offset;
};

TiledQuery tile_query(const QueryMatrix& q, std::int64_t chunks, std::size_t runmax_offset) {
  TiledQuery t{{}, q.n_tokens, static_cast<int>((q.n_tokens + kTileRows - 1) / kTileRows), runmax_offset};
  t.tiles.assign_zero(static_cast<std::size_t>(t.groups) * chunks * 2 * kTileElems);
  for (std::int64_t i = 0; i < q.n_tokens; ++i) {
    const std::int64_t g = i / kTileRows, n = i % kTileRows;
    for (std::int64_t k = 0; k < q.dim; ++k) {
      const float value = q.data[i * q.dim + k];
      const std::uint16_t hi = float_to_bf16(value);
      const std::uint16_t lo = float_to_bf16(value - bf16_to_float(hi));
      const std::int64_t c = k / kChunkDims, p = (k % kChunkDims) / 2, pair = k % 2;
      const std::size_t base = static_cast<std::size_t>((g * chunks + c) * 2) * kTileElems + p * 32 + n * 2 + pair;
      t.tiles.data()[base] = hi;
      t.tiles.data()[base + kTileElems] = lo;
    }
  }
  return t;
}

// Folds the first `valid` rows of a stored 16 x 16 C tile into 16 running maxima.
COLMAX_ALWAYS_INLINE void fold_rows(const float* c, int valid, float* runmax) {
  __m512 m = _mm512_load_ps(runmax);
  for (int r = 0; r < valid; ++r) m = _mm512_max_ps(m, _mm512_load_ps(c + r * 16));
  _mm512_store_ps(runmax, m);
}

// DG document groups (16 tokens each, rows at `docs` with `stride` bytes) against query groups
// g0 (and g0 + 1 when QG == 2), over all chunks; results folded into `runmax` (per query token).
template <int DG, int QG>
void tile_block(const std::uint16_t* docs, std::int64_t stride, std::int64_t chunks, const TiledQuery& q, int g0,
                const int* valid, float* runmax, float* c_buffer) {
  _tile_zero(0);
  if constexpr (QG == 2) _tile_zero(1);
  if constexpr (DG == 2) _tile_zero(2);
  if constexpr (DG == 2 && QG == 2) _tile_zero(3);
  for (std::int64_t c = 0; c < chunks; ++c) {
    // Tile loads are strided gathers of 16 lines that hardware prefetchers do not follow, so
    // fetch this chunk's line of the rows two blocks ahead into L2 now.
    const char* ahead = reinterpret_cast<const char*>(docs + c * kChunkDims) + 4 * kTileRows * stride;
    COLMAX_UNROLL for (int r = 0; r < 2 * kTileRows; ++r) _mm_prefetch(ahead + r * stride, _MM_HINT_T1);
    _tile_loadd(4, docs + c * kChunkDims, stride);
    if constexpr (DG == 2) _tile_loadd(5, docs + 16 * stride / 2 + c * kChunkDims, stride);
    // Per term, every accumulator gets one multiply before any gets its second, so consecutive
    // updates of one tile are up to four instructions apart instead of back to back.
    const std::uint16_t* b0 = q.tiles.data() + static_cast<std::size_t>((g0 * chunks + c) * 2) * kTileElems;
    const std::uint16_t* b1 = b0 + static_cast<std::size_t>(chunks * 2) * kTileElems;  // group g0 + 1
    for (int term = 0; term < 2; ++term) {
      _tile_loadd(6, b0 + term * kTileElems, 64);
      if constexpr (QG == 2) _tile_loadd(7, b1 + term * kTileElems, 64);
      _tile_dpbf16ps(0, 4, 6);
      if constexpr (DG == 2) _tile_dpbf16ps(2, 5, 6);
      if constexpr (QG == 2) _tile_dpbf16ps(1, 4, 7);
      if constexpr (DG == 2 && QG == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  float* rm0 = runmax + g0 * kTileRows;
  _tile_stored(0, c_buffer, 64);
  fold_rows(c_buffer, valid[0], rm0);
  if constexpr (DG == 2) {
    _tile_stored(2, c_buffer, 64);
    fold_rows(c_buffer, valid[1], rm0);
  }
  if constexpr (QG == 2) {
    _tile_stored(1, c_buffer, 64);
    fold_rows(c_buffer, valid[0], rm0 + kTileRows);
    if constexpr (DG == 2) {
      _tile_stored(3, c_buffer, 64);
      fold_rows(c_buffer, valid[1], rm0 + kTileRows);
    }
  }
}

void score_tiles(const Batch& batch) {
  const DocMatrix& docs = *batch.docs;
  const std::int64_t dim = docs.dim, chunks = dim / kChunkDims;
  const std::int64_t stride = dim * 2;  // bytes per document row
  const auto* base = static_cast<const std::uint16_t*>(docs.data);

  std::vector<TiledQuery> queries;
  std::size_t runmax_size = 0;
  for (std::int64_t qi = 0; qi < batch.n_queries; ++qi) {
    queries.push_back(tile_query(batch.queries[qi], chunks, runmax_size));
    runmax_size += static_cast<std::size_t>(queries.back().groups) * kTileRows;
  }
  AlignedBuffer<float> runmax, c_buffer;
  runmax.assign_zero(runmax_size);
  c_buffer.assign_zero(kTileRows * kTileRows);
  // Tiles always load 32 rows; near the end of the matrix they come from a zeroed copy.
  AlignedBuffer<std::uint16_t> tail;
  tail.assign_zero(static_cast<std::size_t>(2 * kTileRows) * dim);

  TileSession session;
  for (std::int64_t b = 0; b < batch.count; ++b) {
    const std::int64_t d = batch.doc(b);
    const std::int64_t begin = docs.offsets[d], end = docs.offsets[d + 1];
    if (begin == end) {
      for (std::int64_t qi = 0; qi < batch.n_queries; ++qi)
        batch.out[qi * batch.out_stride + b] = -std::numeric_limits<float>::infinity();
      continue;
    }
    std::fill(runmax.data(), runmax.data() + runmax_size, -std::numeric_limits<float>::infinity());
    for (std::int64_t t0 = begin; t0 < end; t0 += 2 * kTileRows) {
      // Rows past the document's end are computed but never folded (valid counts exclude them).
      const int valid[2] = {static_cast<int>(std::min<std::int64_t>(kTileRows, end - t0)),
                            static_cast<int>(std::clamp<std::int64_t>(end - t0 - kTileRows, 0, kTileRows))};
      const std::uint16_t* rows = base + t0 * dim;
      if (t0 + 2 * kTileRows > docs.n_rows) {
        std::fill(tail.data(), tail.data() + tail.size(), std::uint16_t(0));
        std::copy(rows, base + docs.n_rows * dim, tail.data());
        rows = tail.data();
      }
      for (const TiledQuery& q : queries) {
        float* rm = runmax.data() + q.runmax_offset;
        for (int g = 0; g < q.groups; g += 2) {
          const bool two_docs = valid[1] > 0, two_queries = g + 1 < q.groups;
          if (two_docs && two_queries)
            tile_block<2, 2>(rows, stride, chunks, q, g, valid, rm, c_buffer.data());
          else if (two_docs)
            tile_block<2, 1>(rows, stride, chunks, q, g, valid, rm, c_buffer.data());
          else if (two_queries)
            tile_block<1, 2>(rows, stride, chunks, q, g, valid, rm, c_buffer.data());
          else
            tile_block<1, 1>(rows, stride, chunks, q, g, valid, rm, c_buffer.data());
        }
      }
    }
    for (std::int64_t qi = 0; qi < batch.n_queries; ++qi) {
      const float* rm = runmax.data() + queries[qi].runmax_offset;
      float score = 0.0f;
      for (std::int64_t i = 0; i < queries[qi].n_tokens; ++i) score += rm[i];
      batch.out[qi * batch.out_stride + b] = score;
    }
  }
}

}  // namespace

void score_amx(const Batch& batch) {
  if (batch.docs->dtype == DType::bf16 && batch.docs->dim % kChunkDims == 0)
    score_tiles(batch);
  else if (batch.docs->dtype == DType::i8)
    score_int8_avx512vnni(batch);
  else
    score_avx512(batch);  // float32-exact widening, as precise as the tile path
}

}  // namespace colmax::kernels
