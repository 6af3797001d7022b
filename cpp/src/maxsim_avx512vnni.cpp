// AVX-512 VNNI MaxSim for int8 documents: vpdpbusd multiplies four biased document bytes by four
// query values per lane and accumulates in 32 bits, 16 query tokens per register, 10 document
// tokens per tile (as the float32 kernel, for the same register budget). Other storage types
// use the AVX-512 kernels.
#include "plaid_residual.hpp"
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
  static constexpr bool paired = false;

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
  static reg to_float(acc a) { return _mm512_cvtepi32_ps(a); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg set1(float v) { return _mm512_set1_ps(v); }

  // plaid_residual.hpp's spread_row: 4-bit rows by vpshufb on their nibbles, 2-bit rows by
  // gathering each packed byte's four bytes, the rest (and other widths) byte by byte.
  static void spread(const ResidualBook& book, const std::uint8_t* packed, std::uint8_t* out) {
    const std::int64_t dim = book.dim;
    std::int64_t j = 0;
    if (book.nbits == 4) {
      const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(book.biased)));
      const __m512i low = _mm512_set1_epi16(0x000F), high = _mm512_set1_epi16(0x0F00);
      for (; j + 64 <= dim; j += 64) {
        const __m512i x = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed + j / 2)));
        const __m512i nibbles =
            _mm512_or_si512(_mm512_and_si512(x, low), _mm512_and_si512(_mm512_slli_epi16(x, 4), high));
        _mm512_storeu_si512(out + j, _mm512_shuffle_epi8(table, nibbles));
      }
    } else if (book.nbits == 2) {
      for (; j + 64 <= dim; j += 64) {
        const __m512i index = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + j / 4)));
        _mm512_storeu_si512(out + j, _mm512_i32gather_epi32(index, book.spread, 4));
      }
    }
    const int per_byte = 8 / book.nbits;
    for (; j < dim; j += per_byte) std::memcpy(out + j, book.spread + packed[j / per_byte] * per_byte, per_byte);
  }

  // <K, C8> and <K, K> of a biased row (K = biased - 128), exactly: vpdpbusd of the biased bytes
  // with C8 and with K, their bias removed with sum C8 and sum K (vpdpbusd by ones).
  static void row_dots(const std::uint8_t* biased, const std::int8_t* c8, std::int64_t dim, std::int32_t& cross,
                       std::int32_t& self) {
    const __m512i flip = _mm512_set1_epi8(-128), ones = _mm512_set1_epi8(1);
    __m512i cr = _mm512_setzero_si512(), kk = cr, c_sum = cr, k_sum = cr;
    for (std::int64_t j = 0; j < dim; j += 64) {
      const __mmask64 mask = dim - j >= 64 ? ~__mmask64(0) : (__mmask64(1) << (dim - j)) - 1;
      const __m512i b = _mm512_maskz_loadu_epi8(mask, biased + j), c = _mm512_maskz_loadu_epi8(mask, c8 + j);
      const __m512i k = _mm512_maskz_mov_epi8(mask, _mm512_xor_si512(b, flip));
      cr = _mm512_dpbusd_epi32(cr, b, c);
      kk = _mm512_dpbusd_epi32(kk, b, k);
      c_sum = _mm512_dpbusd_epi32(c_sum, ones, c);
      k_sum = _mm512_dpbusd_epi32(k_sum, ones, k);
    }
    cross = _mm512_reduce_add_epi32(cr) - 128 * _mm512_reduce_add_epi32(c_sum);
    self = _mm512_reduce_add_epi32(kk) - 128 * _mm512_reduce_add_epi32(k_sum);
  }
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
#include "plaid_residual.inl"

}  // namespace avx512vnni

void score_residuals_avx512vnni(const ResidualBatch& batch) { avx512vnni::score_residuals<avx512vnni::I8>(batch); }

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
