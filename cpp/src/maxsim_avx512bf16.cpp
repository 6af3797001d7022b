// AVX-512 BF16 MaxSim for bfloat16 documents: vdpbf16ps multiplies a pair of dimensions per
// instruction with float32 accumulation. The query is rounded to bfloat16 once (the documents
// already are), so scores differ from the float32 path by bfloat16 rounding of the query.
// Other storage types, and odd dimensions (a pair would straddle two rows), use AVX-512 (VNNI).
#include "simd_common.hpp"

namespace colmax::kernels {
namespace avx512bf16 {

// One step = two dimensions: a query lane holds the pair (q[2s], q[2s+1]) as bf16 in 32 bits,
// matching the 32 bits of a row-major bf16 document row at the same pair.
struct BF16Dot {
  using reg = __m512;
  using acc = reg;
  using oper = __m512bh;
  using q_elem = std::uint32_t;
  using d_elem = std::uint32_t;
  static constexpr int lanes = 16;
  static constexpr int tile_rows = 10;
  static constexpr bool quantized = false;
  static constexpr bool paired = false;

  static std::int64_t steps(std::int64_t dim) { return dim / 2; }
  static std::uint32_t pack_query(const float* row, std::int64_t s, std::int64_t) {
    return std::uint32_t(float_to_bf16(row[2 * s])) | (std::uint32_t(float_to_bf16(row[2 * s + 1])) << 16);
  }
  static reg zero() { return _mm512_setzero_ps(); }
  static oper load_q(const std::uint32_t* p) { return (oper)_mm512_load_si512(p); }
  static oper bcast_d(const std::uint32_t* p) { return (oper)_mm512_set1_epi32(static_cast<int>(*p)); }
  static reg madd(reg acc, oper q, oper d) { return _mm512_dpbf16_ps(acc, q, d); }
  static reg load_f(const float* p) { return _mm512_load_ps(p); }
  static void store_f(float* p, reg v) { _mm512_store_ps(p, v); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
};

#include "maxsim_tiles.inl"

}  // namespace avx512bf16

void score_avx512bf16(const Batch& batch) {
  if (batch.docs->dtype == DType::bf16 && batch.docs->dim % 2 == 0)
    avx512bf16::score_batch<avx512bf16::BF16Dot, avx512bf16::RowSource::direct>(batch);
  else
    score_avx512vnni(batch);
}

}  // namespace colmax::kernels
