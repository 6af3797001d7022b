// AVX-512 VNNI MaxSim for int8 documents: vpdpbusd multiplies four biased document bytes by four
// query values per lane and accumulates in 32 bits, 16 query tokens per register, 10 document
// tokens per tile (as the float32 kernel, for the same register budget). Other storage types
// use the AVX-512 kernels.
#include "simd_common.hpp"

namespace colmax::kernels {
namespace avx512vnni {

struct I8 {
  using acc = __m512i;
  using reg = __m512;
  using oper = __m512i;
  using q_elem = std::uint32_t;  // four signed query values
  using d_elem = std::uint32_t;  // four biased (unsigned) document values
  static constexpr int lanes = 16;
  static constexpr int tile_rows = 10;
  static constexpr bool quantized = true;

  static std::int64_t steps(std::int64_t dim) { return (dim + 3) / 4; }
  static acc zero() { return _mm512_setzero_si512(); }
  static oper load_q(const std::uint32_t* p) { return _mm512_load_si512(p); }
  static oper bcast_d(const std::uint32_t* p) { return _mm512_set1_epi32(static_cast<int>(*p)); }
  static acc madd(acc a, oper q, oper d) { return _mm512_dpbusd_epi32(a, d, q); }
  static reg load_f(const float* p) { return _mm512_load_ps(p); }
  static void store_f(float* p, reg v) { _mm512_store_ps(p, v); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static acc load_i(const std::int32_t* p) { return _mm512_load_si512(p); }
  static reg dequant(acc a, float scale) { return _mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_set1_ps(scale)); }
  static void bias_rows(const std::int8_t* in, std::uint8_t* out, std::int64_t rows, std::int64_t dim,
                        std::int64_t stride) {
    if (stride != dim) {  // padded rows: one at a time
      for (std::int64_t r = 0; r < rows; ++r) bias_rows(in + r * dim, out + r * stride, 1, dim, dim);
      return;
    }
    const __m512i flip = _mm512_set1_epi8(-128);
    const std::int64_t n = rows * dim;
    std::int64_t i = 0;
    for (; i + 64 <= n; i += 64) _mm512_storeu_si512(out + i, _mm512_xor_si512(_mm512_loadu_si512(in + i), flip));
    if (i < n) {
      const __mmask64 tail = (~std::uint64_t(0)) >> (64 - (n - i));
      _mm512_mask_storeu_epi8(out + i, tail, _mm512_xor_si512(_mm512_maskz_loadu_epi8(tail, in + i), flip));
    }
  }
};

#include "maxsim_tiles.inl"

}  // namespace avx512vnni

void score_int8_avx512vnni(const Batch& batch) {
  avx512vnni::score_batch<avx512vnni::I8, avx512vnni::RowSource::bias_i8>(batch);
}

void score_avx512vnni(const Batch& batch) {
  if (batch.docs->dtype == DType::i8)
    score_int8_avx512vnni(batch);
  else
    score_avx512(batch);
}

}  // namespace colmax::kernels
