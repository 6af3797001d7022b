// AMX MaxSim: bfloat16 documents with a dimension divisible by 32, int8 documents with one
// divisible by 64.
//
// A tile multiply computes a 16 x 16 block of similarities, 16 document tokens by 16 query
// tokens, over one chunk of dimensions at once (TDPBF16PS: 32 bfloat16 pairs; TDPBSSD: 64 signed
// bytes in quads): rows of the row-major document matrix load straight into the A tile (stride =
// one row), and each query is prepared once as B tiles in the pair- or quad-interleaved layout
// the instruction expects. After all chunks, the C tile is stored and its valid rows folded into
// per-query-token running maxima with AVX-512.
//
// bfloat16 precision: the query is split into two bfloat16 terms, hi = bf16(q) and lo =
// bf16(q - hi), and both are multiplied in (products are exact in float32), so scores match the
// float32 widening kernels to float32 accumulation error rather than bfloat16 rounding of the
// query.
//
// int8: the query tokens are quantized as every int8 kernel does (colmax/quantize.hpp); signed
// documents times signed queries need neither a bias nor a correction, the int32 dot products are
// exact, and the scales are applied in the specification's order, so the bits equal the scalar
// kernel's.
//
// Tile registers: tmm0-3 accumulators C[document group][query group], tmm4-5 document tiles,
// tmm6-7 query tiles. Other dimensions and storage types use the AVX-512 kernels (float32-exact
// widening; VNNI for int8), whose results match these.
#include "simd_common.hpp"

namespace colmax::kernels {
namespace {

constexpr int kTileRows = 16;     // document tokens per tile, query tokens per tile column block
constexpr int kTileBytes = 1024;  // one 16 x 64-byte tile

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

// One query as B tiles: tile (group g, chunk c, term h) starts at ((g * chunks + c) * terms + h)
// tiles; row p of a tile holds, for each of the group's 16 tokens n, the p-th pair (bf16) or
// quad (int8) of the chunk's dimensions. int8 queries also keep each token's scale.
template <class T>
struct TiledQuery {
  AlignedBuffer<T> tiles;
  AlignedBuffer<float> token_scale;
  std::int64_t n_tokens;
  int groups;
  std::size_t runmax_offset;
};

// bfloat16 documents: TDPBF16PS over 32 dimensions, two terms per query (hi and lo).
struct Bf16 {
  using elem = std::uint16_t;
  static constexpr int chunk_dims = 32;
  static constexpr int terms = 2;
  static constexpr int tile_elems = kTileBytes / sizeof(elem);
  static constexpr bool int8 = false;

  static TiledQuery<elem> prepare(const QueryMatrix& q, std::int64_t chunks, std::size_t runmax_offset) {
    TiledQuery<elem> t{{}, {}, q.n_tokens, static_cast<int>((q.n_tokens + kTileRows - 1) / kTileRows), runmax_offset};
    t.tiles.assign_zero(static_cast<std::size_t>(t.groups) * chunks * terms * tile_elems);
    for (std::int64_t i = 0; i < q.n_tokens; ++i) {
      const std::int64_t g = i / kTileRows, n = i % kTileRows;
      for (std::int64_t k = 0; k < q.dim; ++k) {
        const float value = q.data[i * q.dim + k];
        const std::uint16_t hi = float_to_bf16(value);
        const std::uint16_t lo = float_to_bf16(value - bf16_to_float(hi));
        const std::int64_t c = k / chunk_dims, p = (k % chunk_dims) / 2, pair = k % 2;
        const std::size_t base =
            static_cast<std::size_t>((g * chunks + c) * terms) * tile_elems + p * 32 + n * 2 + pair;
        t.tiles.data()[base] = hi;
        t.tiles.data()[base + tile_elems] = lo;
      }
    }
    return t;
  }
  // Folds the first `valid` rows of a stored 16 x 16 C tile into 16 running maxima.
  static void fold(const void* c_tile, const float* /*row_scale*/, int valid, float* runmax) {
    const float* c = static_cast<const float*>(c_tile);
    __m512 m = _mm512_load_ps(runmax);
    for (int r = 0; r < valid; ++r) m = _mm512_max_ps(m, _mm512_load_ps(c + r * 16));
    _mm512_store_ps(runmax, m);
  }
  static float score(const TiledQuery<elem>& q, const float* runmax) {
    float score = 0.0f;
    for (std::int64_t i = 0; i < q.n_tokens; ++i) score += runmax[i];
    return score;
  }
};

// int8 documents: TDPBSSD over 64 dimensions, one term.
struct Int8 {
  using elem = std::int8_t;
  static constexpr int chunk_dims = 64;
  static constexpr int terms = 1;
  static constexpr int tile_elems = kTileBytes;
  static constexpr bool int8 = true;

  static TiledQuery<elem> prepare(const QueryMatrix& q, std::int64_t chunks, std::size_t runmax_offset) {
    TiledQuery<elem> t{{}, {}, q.n_tokens, static_cast<int>((q.n_tokens + kTileRows - 1) / kTileRows), runmax_offset};
    t.tiles.assign_zero(static_cast<std::size_t>(t.groups) * chunks * tile_elems);
    t.token_scale.assign_zero(static_cast<std::size_t>(q.n_tokens));
    std::vector<std::int8_t> row8(static_cast<std::size_t>(q.dim));
    for (std::int64_t i = 0; i < q.n_tokens; ++i) {
      t.token_scale.data()[i] = quantize_row(q.data + i * q.dim, q.dim, kQueryLevels, row8.data());
      const std::int64_t g = i / kTileRows, n = i % kTileRows;
      for (std::int64_t k = 0; k < q.dim; ++k) {
        const std::int64_t c = k / chunk_dims, p = (k % chunk_dims) / 4, quad = k % 4;
        t.tiles.data()[static_cast<std::size_t>(g * chunks + c) * tile_elems + p * 64 + n * 4 + quad] = row8[k];
      }
    }
    return t;
  }
  // Folds the first `valid` rows of a stored 16 x 16 int32 C tile, each row's products scaled
  // by that row's scale, into 16 running maxima.
  static void fold(const void* c_tile, const float* row_scale, int valid, float* runmax) {
    const auto* c = static_cast<const std::int32_t*>(c_tile);
    __m512 m = _mm512_load_ps(runmax);
    for (int r = 0; r < valid; ++r)
      m = _mm512_max_ps(m,
                        _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + r * 16)), _mm512_set1_ps(row_scale[r])));
    _mm512_store_ps(runmax, m);
  }
  // s_i * max_j(...) per token, then their sum in token order (colmax/quantize.hpp).
  static float score(const TiledQuery<elem>& q, const float* runmax) {
    float score = 0.0f;
    for (std::int64_t i = 0; i < q.n_tokens; ++i) score += runmax[i] * q.token_scale.data()[i];
    return score;
  }
};

// The tile intrinsics take register numbers as literal tokens, so the kind picks its multiply here.
#define COLMAX_TILE_MULTIPLY(c, a, b) \
  do {                                \
    if constexpr (K::int8)            \
      _tile_dpbssd(c, a, b);          \
    else                              \
      _tile_dpbf16ps(c, a, b);        \
  } while (0)

// DG document groups (16 tokens each, rows at `docs`, `dim` elements apart) against query groups
// g0 (and g0 + 1 when QG == 2), over all chunks; results folded into `runmax` (per query token).
// `row_scale`: the rows' scales (int8) or null.
template <class K, int DG, int QG>
void tile_block(const typename K::elem* docs, std::int64_t dim, std::int64_t chunks,
                const TiledQuery<typename K::elem>& q, int g0, const int* valid, const float* row_scale, float* runmax,
                void* c_buffer) {
  const std::int64_t stride = dim * static_cast<std::int64_t>(sizeof(typename K::elem));  // bytes per row
  _tile_zero(0);
  if constexpr (QG == 2) _tile_zero(1);
  if constexpr (DG == 2) _tile_zero(2);
  if constexpr (DG == 2 && QG == 2) _tile_zero(3);
  for (std::int64_t c = 0; c < chunks; ++c) {
    const typename K::elem* a = docs + c * K::chunk_dims;
    // Tile loads are strided gathers of 16 lines that hardware prefetchers do not follow, so
    // fetch this chunk's line of the rows two blocks ahead into L2 now.
    const char* ahead = reinterpret_cast<const char*>(a) + 4 * kTileRows * stride;
    COLMAX_UNROLL for (int r = 0; r < 2 * kTileRows; ++r) _mm_prefetch(ahead + r * stride, _MM_HINT_T1);
    _tile_loadd(4, a, stride);
    if constexpr (DG == 2) _tile_loadd(5, a + kTileRows * dim, stride);
    // Per term, every accumulator gets one multiply before any gets its second, so consecutive
    // updates of one tile are up to four instructions apart instead of back to back.
    const typename K::elem* b0 =
        q.tiles.data() + static_cast<std::size_t>((g0 * chunks + c) * K::terms) * K::tile_elems;
    const typename K::elem* b1 = b0 + static_cast<std::size_t>(chunks * K::terms) * K::tile_elems;  // group g0 + 1
    for (int term = 0; term < K::terms; ++term) {
      _tile_loadd(6, b0 + term * K::tile_elems, 64);
      if constexpr (QG == 2) _tile_loadd(7, b1 + term * K::tile_elems, 64);
      COLMAX_TILE_MULTIPLY(0, 4, 6);
      if constexpr (DG == 2) COLMAX_TILE_MULTIPLY(2, 5, 6);
      if constexpr (QG == 2) COLMAX_TILE_MULTIPLY(1, 4, 7);
      if constexpr (DG == 2 && QG == 2) COLMAX_TILE_MULTIPLY(3, 5, 7);
    }
  }
  float* rm0 = runmax + g0 * kTileRows;
  const float* scale1 = row_scale ? row_scale + kTileRows : nullptr;
  _tile_stored(0, c_buffer, 64);
  K::fold(c_buffer, row_scale, valid[0], rm0);
  if constexpr (DG == 2) {
    _tile_stored(2, c_buffer, 64);
    K::fold(c_buffer, scale1, valid[1], rm0);
  }
  if constexpr (QG == 2) {
    _tile_stored(1, c_buffer, 64);
    K::fold(c_buffer, row_scale, valid[0], rm0 + kTileRows);
    if constexpr (DG == 2) {
      _tile_stored(3, c_buffer, 64);
      K::fold(c_buffer, scale1, valid[1], rm0 + kTileRows);
    }
  }
}

#undef COLMAX_TILE_MULTIPLY

template <class K>
void score_tiles(const Batch& batch) {
  using elem = typename K::elem;
  const DocMatrix& docs = *batch.docs;
  const std::int64_t dim = docs.dim, chunks = dim / K::chunk_dims;
  const auto* base = static_cast<const elem*>(docs.data);

  std::vector<TiledQuery<elem>> queries;
  std::size_t runmax_size = 0;
  for (std::int64_t qi = 0; qi < batch.n_queries; ++qi) {
    queries.push_back(K::prepare(batch.queries[qi], chunks, runmax_size));
    runmax_size += static_cast<std::size_t>(queries.back().groups) * kTileRows;
  }
  AlignedBuffer<float> runmax;
  AlignedBuffer<std::uint8_t> c_buffer;
  runmax.assign_zero(runmax_size);
  c_buffer.assign_zero(kTileBytes);
  // Tiles always load 32 rows; near the end of the matrix they come from a zeroed copy.
  AlignedBuffer<elem> tail;
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
      const elem* rows = base + t0 * dim;
      const float* row_scale = docs.scales ? docs.scales + t0 : nullptr;
      if (t0 + 2 * kTileRows > docs.n_rows) {
        std::fill(tail.data(), tail.data() + tail.size(), elem(0));
        std::copy(rows, base + docs.n_rows * dim, tail.data());
        rows = tail.data();
      }
      for (const TiledQuery<elem>& q : queries) {
        float* rm = runmax.data() + q.runmax_offset;
        for (int g = 0; g < q.groups; g += 2) {
          const bool two_docs = valid[1] > 0, two_queries = g + 1 < q.groups;
          if (two_docs && two_queries)
            tile_block<K, 2, 2>(rows, dim, chunks, q, g, valid, row_scale, rm, c_buffer.data());
          else if (two_docs)
            tile_block<K, 2, 1>(rows, dim, chunks, q, g, valid, row_scale, rm, c_buffer.data());
          else if (two_queries)
            tile_block<K, 1, 2>(rows, dim, chunks, q, g, valid, row_scale, rm, c_buffer.data());
          else
            tile_block<K, 1, 1>(rows, dim, chunks, q, g, valid, row_scale, rm, c_buffer.data());
        }
      }
    }
    for (std::int64_t qi = 0; qi < batch.n_queries; ++qi)
      batch.out[qi * batch.out_stride + b] = K::score(queries[qi], runmax.data() + queries[qi].runmax_offset);
  }
}

}  // namespace

void score_amx(const Batch& batch) {
  if (batch.docs->dtype == DType::bf16 && batch.docs->dim % Bf16::chunk_dims == 0)
    score_tiles<Bf16>(batch);
  else if (batch.docs->dtype == DType::i8 && batch.docs->dim % Int8::chunk_dims == 0)
    score_tiles<Int8>(batch);
  else if (batch.docs->dtype == DType::i8)
    score_int8_avx512vnni(batch);
  else
    score_avx512(batch);  // float32-exact widening, as precise as the tile path
}

}  // namespace colmax::kernels
