// AVX-512 MaxSim: 16 query tokens per register, 10 document tokens per tile (20 accumulators); the
// int8 quantizer and the compressed index's kernels.
// Ten rows keep every row pointer in a general register; with twelve the compiler spills them
// inside the inner loop and loses ~10% (measured in cache, 32 x 128 query).
#include "plaid_kernels.hpp"
#include "simd_common.hpp"

namespace colmax::kernels {
namespace avx512 {

struct F32 {
  using reg = __m512;
  using acc = reg;
  using oper = __m512;
  using q_elem = float;
  using d_elem = float;
  static constexpr int lanes = 16;
  static constexpr int tile_rows = 10;
  static constexpr bool quantized = false;
  static constexpr bool paired = false;

  static std::int64_t steps(std::int64_t dim) { return dim; }
  static float pack_query(const float* row, std::int64_t s, std::int64_t) { return row[s]; }
  static reg zero() { return _mm512_setzero_ps(); }
  static oper load_q(const float* p) { return _mm512_load_ps(p); }
  static oper bcast_d(const float* p) { return _mm512_set1_ps(*p); }
  static reg madd(reg acc, oper q, oper d) { return _mm512_fmadd_ps(q, d, acc); }
  static reg load_f(const float* p) { return _mm512_load_ps(p); }
  static void store_f(float* p, reg v) { _mm512_store_ps(p, v); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static reg select_gt(reg a, reg b, reg x, reg y) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), y, x);
  }
  static reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static float sum(reg v) { return _mm512_reduce_add_ps(v); }

  // max |x_k|, in four independent chains
  static float max_abs(const float* x, std::int64_t dim) {
    __m512 m[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    std::int64_t j = 0;
    for (; j + 64 <= dim; j += 64)
      for (int u = 0; u < 4; ++u) m[u] = _mm512_max_ps(m[u], _mm512_abs_ps(_mm512_loadu_ps(x + j + 16 * u)));
    for (; j + 16 <= dim; j += 16) m[0] = _mm512_max_ps(m[0], _mm512_abs_ps(_mm512_loadu_ps(x + j)));
    const __mmask16 tail = static_cast<__mmask16>((1u << (dim - j)) - 1);
    m[1] = _mm512_max_ps(m[1], _mm512_abs_ps(_mm512_maskz_loadu_ps(tail, x + j)));
    return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m[0], m[1]), _mm512_max_ps(m[2], m[3])));
  }

  // colmax::quantize_row, bit for bit: 16 values per step (vcvtps2dq rounds half to even, as the
  // scalar code does); returns the scale.
  static float quantize_row(const float* x, std::int64_t dim, int levels, std::int8_t* out) {
    const float top = max_abs(x, dim);
    if (top == 0.0f) {
      std::fill(out, out + dim, std::int8_t(0));
      return 0.0f;
    }
    const float level = static_cast<float>(levels);
    const __m512 inv = _mm512_set1_ps(level / top);
    const __m512i lo = _mm512_set1_epi32(-levels), hi = _mm512_set1_epi32(levels);
    auto quantize = [&](__m512 v) {
      return _mm512_cvtepi32_epi8(
          _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, inv)), lo), hi));
    };
    const std::int64_t full = dim / 16 * 16;
    for (std::int64_t j = 0; j < full; j += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), quantize(_mm512_loadu_ps(x + j)));
    const __mmask16 tail = static_cast<__mmask16>((1u << (dim - full)) - 1);
    if (tail) _mm_mask_storeu_epi8(out + full, tail, quantize(_mm512_maskz_loadu_ps(tail, x + full)));
    return top / level;
  }

  // Sixteen dimensions per step. For NBITS <= 4 their 2 * NBITS bytes go to the lanes as 32-bit
  // words (dimensions 8-15 of 4-bit buckets from the second word), each lane shifts its bucket
  // index down, and one vpermps looks the weight up in a register of up to 16 buckets; 8-bit
  // buckets are gathered.
  template <int NBITS>
  struct Buckets {
    const float* weights;
    __m512 table;
    __m512i shifts = _mm512_setr_epi32(0, NBITS, 2 * NBITS, 3 * NBITS, 4 * NBITS, 5 * NBITS, 6 * NBITS, 7 * NBITS,
                                       8 * NBITS % 32, 9 * NBITS % 32, 10 * NBITS % 32, 11 * NBITS % 32,
                                       12 * NBITS % 32, 13 * NBITS % 32, 14 * NBITS % 32, 15 * NBITS % 32);
    __m512i words = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, NBITS / 4, NBITS / 4, NBITS / 4, NBITS / 4, NBITS / 4,
                                      NBITS / 4, NBITS / 4, NBITS / 4);
    __m512i mask = _mm512_set1_epi32((1 << NBITS) - 1);

    explicit Buckets(const float* w) : weights(w) {
      float padded[16] = {};
      for (int b = 0; b < std::min(1 << NBITS, 16); ++b) padded[b] = w[b];
      table = _mm512_loadu_ps(padded);
    }
    reg operator()(const std::uint8_t* packed) const {
      if constexpr (NBITS == 8) {
        const __m512i index = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(packed)));
        return _mm512_i32gather_ps(index, weights, 4);
      } else {
        std::uint64_t word = 0;
        std::memcpy(&word, packed, 2 * NBITS);
        const __m512i lanes =
            _mm512_permutexvar_epi32(words, _mm512_castsi128_si512(_mm_cvtsi64_si128(static_cast<long long>(word))));
        return _mm512_permutexvar_ps(_mm512_and_si512(_mm512_srlv_epi32(lanes, shifts), mask), table);
      }
    }
  };

  static void widen_f16(const std::uint16_t* in, float* out, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
    for (; i < n; ++i) out[i] = f16_to_float(in[i]);
  }
  static void widen_bf16(const std::uint16_t* in, float* out, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i)));
      _mm512_storeu_si512(out + i, _mm512_slli_epi32(wide, 16));
    }
    for (; i < n; ++i) out[i] = bf16_to_float(in[i]);
  }
};

#include "maxsim_tiles.inl"
#include "plaid_tiles.inl"

}  // namespace avx512

void quantize_avx512(const float* x, std::int64_t n, std::int64_t dim, int levels, std::int8_t* out, float* scales) {
  for (std::int64_t r = 0; r < n; ++r) scales[r] = avx512::F32::quantize_row(x + r * dim, dim, levels, out + r * dim);
}

void score_avx512(const Batch& batch) {
  if (batch.docs->dtype == DType::i8)
    score_int8_avx2(batch);  // vpmaddubsw without VNNI: the AVX2 kernel does it
  else
    avx512::score_widening<avx512::F32>(batch);
}

const PlaidKernels plaid_avx512 = avx512::plaid_kernels<avx512::F32>();

}  // namespace colmax::kernels
