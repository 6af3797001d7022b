// AVX2 + FMA MaxSim: 8 query tokens per register, 6 document tokens per tile (12 accumulators
// of the 16 ymm registers); int8 documents through vpmaddubsw + vpmaddwd; the int8 quantizer and
// the compressed index's kernels. The only file built with AVX2 flags.
#include <cmath>
#include <cstring>

#include "plaid_kernels.hpp"
#include "plaid_residual.hpp"
#include "simd_common.hpp"

namespace colmax::kernels {
namespace avx2 {

struct F32 {
  using reg = __m256;
  using acc = reg;
  using oper = __m256;
  using q_elem = float;
  using d_elem = float;
  static constexpr int lanes = 8;
  static constexpr int tile_rows = 6;
  static constexpr bool quantized = false;
  static constexpr bool paired = false;

  static std::int64_t steps(std::int64_t dim) { return dim; }
  static float pack_query(const float* row, std::int64_t s, std::int64_t) { return row[s]; }
  static reg zero() { return _mm256_setzero_ps(); }
  static oper load_q(const float* p) { return _mm256_load_ps(p); }
  static oper bcast_d(const float* p) { return _mm256_broadcast_ss(p); }
  static reg madd(reg acc, oper q, oper d) { return _mm256_fmadd_ps(q, d, acc); }
  static reg load_f(const float* p) { return _mm256_load_ps(p); }
  static void store_f(float* p, reg v) { _mm256_store_ps(p, v); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static reg select_gt(reg a, reg b, reg x, reg y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_GT_OQ)); }
  static reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static float sum(reg v) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  }
  static reg abs(reg v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
  static float hmax(reg v) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    return std::max(std::max(std::max(lanes[0], lanes[1]), std::max(lanes[2], lanes[3])),
                    std::max(std::max(lanes[4], lanes[5]), std::max(lanes[6], lanes[7])));
  }

  // max |x_k|, in four independent chains
  static float max_abs(const float* x, std::int64_t dim) {
    __m256 m[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    std::int64_t j = 0;
    for (; j + 32 <= dim; j += 32)
      for (int u = 0; u < 4; ++u) m[u] = _mm256_max_ps(m[u], abs(_mm256_loadu_ps(x + j + 8 * u)));
    for (; j + 8 <= dim; j += 8) m[0] = _mm256_max_ps(m[0], abs(_mm256_loadu_ps(x + j)));
    float top = hmax(_mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3])));
    for (; j < dim; ++j) top = std::max(top, std::fabs(x[j]));
    return top;
  }

  // colmax::quantize_row, bit for bit: 8 values per step (vcvtps2dq, and cvtss2si for the tail,
  // round half to even under the default rounding mode, as the scalar code does); returns the scale.
  static float quantize_row(const float* x, std::int64_t dim, int levels, std::int8_t* out) {
    const float top = max_abs(x, dim);
    if (top == 0.0f) {
      std::fill(out, out + dim, std::int8_t(0));
      return 0.0f;
    }
    const float level = static_cast<float>(levels), inv_scalar = level / top;
    const __m256 inv = _mm256_set1_ps(inv_scalar);
    const __m256i lo = _mm256_set1_epi32(-levels), hi = _mm256_set1_epi32(levels);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    auto quantize = [&](const float* p) {
      return _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(p), inv)), lo), hi);
    };
    std::int64_t j = 0;
    for (; j + 32 <= dim; j += 32) {
      // packs saturate within 128-bit halves; the permutation puts the 32 bytes back in order
      const __m256i ab = _mm256_packs_epi32(quantize(x + j), quantize(x + j + 8));
      const __m256i cd = _mm256_packs_epi32(quantize(x + j + 16), quantize(x + j + 24));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j),
                          _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order));
    }
    for (; j < dim; ++j)
      out[j] = static_cast<std::int8_t>(std::clamp(_mm_cvtss_si32(_mm_set_ss(x[j] * inv_scalar)), -levels, levels));
    return top / level;
  }

  // Eight dimensions per step. For NBITS <= 4 their NBITS bytes are broadcast as one 32-bit word,
  // each lane shifts its bucket index down, and vpermps looks the weight up in registers (16
  // buckets: two tables and a blend on the index's bit 3); 8-bit buckets are gathered.
  template <int NBITS>
  struct Buckets {
    const float* weights;
    __m256 low, high;
    __m256i shifts = _mm256_setr_epi32(0, NBITS, 2 * NBITS, 3 * NBITS, 4 * NBITS, 5 * NBITS, 6 * NBITS, 7 * NBITS);
    __m256i mask = _mm256_set1_epi32((1 << NBITS) - 1);

    explicit Buckets(const float* w) : weights(w) {
      float padded[16] = {};
      for (int b = 0; b < std::min(1 << NBITS, 16); ++b) padded[b] = w[b];
      low = _mm256_loadu_ps(padded);
      high = _mm256_loadu_ps(padded + 8);
    }
    reg operator()(const std::uint8_t* packed) const {
      if constexpr (NBITS == 8) {
        const __m256i index = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed)));
        return _mm256_i32gather_ps(weights, index, 4);
      } else {
        std::uint32_t word = 0;
        std::memcpy(&word, packed, NBITS);
        const __m256i index =
            _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shifts), mask);
        const __m256 w = _mm256_permutevar8x32_ps(low, index);
        if constexpr (NBITS < 4) return w;
        return _mm256_blendv_ps(w, _mm256_permutevar8x32_ps(high, index),
                                _mm256_castsi256_ps(_mm256_slli_epi32(index, 28)));
      }
    }
  };

  static void widen_f16(const std::uint16_t* in, float* out, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
    for (; i < n; ++i) out[i] = f16_to_float(in[i]);
  }
  static void widen_bf16(const std::uint16_t* in, float* out, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_slli_epi32(wide, 16));
    }
    for (; i < n; ++i) out[i] = bf16_to_float(in[i]);
  }
};

// int8: vpmaddubsw multiplies biased document bytes (0..255) by query values and adds pairs in
// 16 bits; vpmaddwd by ones widens them to 32 bits. I8 (the compressed index's residual rows,
// kResidualQueryLevels = 64) widens every step: 2 * 255 * 64 = 32,640 cannot saturate. I8Pairs
// (int8 documents, kQueryLevels = 32) first adds the pairs of two steps in 16 bits (vpaddw):
// 4 * 255 * 32 = 32,640 cannot overflow, and five instructions per 64 byte products instead of
// six is what the ALU ports allow. Its steps come in pairs, so a row's steps round up to an even
// count (zero bytes past dim meet zero query values). Five rows: ten accumulators, the ones, query,
// document and pair registers fit the 16 ymm registers (the second step's query loads from memory).
#include "int8_ymm.inl"

struct I8 : I8Ymm {
  static constexpr int tile_rows = 5;
  static acc madd(acc a, oper q, oper d) {
    const __m256i pairs = _mm256_maddubs_epi16(d, q);
    return _mm256_add_epi32(a, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

struct I8Pairs : I8 {
  static constexpr bool paired = true;
  static std::int64_t steps(std::int64_t dim) { return (dim + 7) / 8 * 2; }
  static acc madd2(acc a, oper q, oper d, oper r, oper e) {
    const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(d, q), _mm256_maddubs_epi16(e, r));
    return _mm256_add_epi32(a, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

#include "maxsim_tiles.inl"
#include "plaid_residual.inl"
#include "plaid_tiles.inl"

}  // namespace avx2

void quantize_avx2(const float* x, std::int64_t n, std::int64_t dim, int levels, std::int8_t* out, float* scales) {
  for (std::int64_t r = 0; r < n; ++r) scales[r] = avx2::F32::quantize_row(x + r * dim, dim, levels, out + r * dim);
}

void score_residuals_avx2(const ResidualBatch& batch) { avx2::score_residuals<avx2::I8>(batch); }

void score_int8_avx2(const Batch& batch) { avx2::score_batch<avx2::I8Pairs, avx2::RowSource::bias_i8>(batch); }

void score_avx2(const Batch& batch) {
  if (batch.docs->dtype == DType::i8)
    score_int8_avx2(batch);
  else
    avx2::score_widening<avx2::F32>(batch);
}

const PlaidKernels plaid_avx2 = avx2::plaid_kernels<avx2::F32>();

}  // namespace colmax::kernels
