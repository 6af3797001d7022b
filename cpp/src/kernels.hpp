// The one kernel signature, declared once per instruction set. Kernels trust their input:
// colmax::validate() has checked shapes, offsets and indices before any kernel runs.
#pragma once

#include <cstdint>

#include "colmax/maxsim.hpp"

namespace colmax::kernels {

// One unit of work: `count` documents scored against `n_queries` queries.
// Document b of the batch is ids[b] when ids is set, else first + b.
// Scores go to out[qi * out_stride + b]. Zero-token documents score -infinity.
struct Batch {
  const QueryMatrix* queries;
  std::int64_t n_queries;
  const DocMatrix* docs;
  const std::int64_t* ids;
  std::int64_t first;
  std::int64_t count;
  float* out;
  std::int64_t out_stride;

  std::int64_t doc(std::int64_t b) const { return ids ? ids[b] : first + b; }
};

using ScoreFn = void (*)(const Batch&);

// Rows [0, n) of x (n x dim) quantized as colmax::quantize_row does with `levels`, bit for bit:
// values into out (n x dim), scales into scales (n).
using QuantizeFn = void (*)(const float* x, std::int64_t n, std::int64_t dim, int levels, std::int8_t* out,
                            float* scales);

void score_scalar(const Batch& batch);
void quantize_scalar(const float* x, std::int64_t n, std::int64_t dim, int levels, std::int8_t* out, float* scales);
#if defined(COLMAX_X86)
void quantize_avx2(const float* x, std::int64_t n, std::int64_t dim, int levels, std::int8_t* out, float* scales);
void quantize_avx512(const float* x, std::int64_t n, std::int64_t dim, int levels, std::int8_t* out, float* scales);
void score_avx2(const Batch& batch);
void score_avxvnni(const Batch& batch);
void score_avx512(const Batch& batch);
void score_avx512vnni(const Batch& batch);
void score_avx512bf16(const Batch& batch);
void score_amx(const Batch& batch);
// The int8 kernels that ISAs without their own borrow: AVX-512 without VNNI uses AVX2's,
// the AVX-512 levels above VNNI use avx512vnni's.
void score_int8_avx2(const Batch& batch);
void score_int8_avx512vnni(const Batch& batch);
#endif

}  // namespace colmax::kernels
