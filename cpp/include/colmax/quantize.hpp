// Symmetric int8 quantization of token vectors, one scale per row: the storage of int8 documents
// and the rule every int8 MaxSim kernel applies to query tokens.
//
//   m = max_k |x_k|;  scale = m / levels;  q_k = round_half_even(x_k * (levels / m)), in [-levels, levels]
//
// so the row stands for scale * q (a zero row: scale 0, q 0). Documents use levels = 127. The
// kernels quantize each query token the same way with kQueryLevels, then score
//
//   score(q, d) = sum_i  s_i * max_j (s_j * <q8_i, d8_j>)      (products rounded as written)
//
// where <q8_i, d8_j> is the exact integer dot product; every instruction set computes these
// same operations, so int8 scores are identical on every kernel.
#pragma once

#include <cstdint>

namespace colmax {

// Document rows: the full int8 range but -128, so that negating a row stays in range.
constexpr int kDocLevels = 127;
// Query tokens: 32 levels a side, so that the AVX2 kernel's 16-bit sums of four products (two
// vpmaddubsw pairs of a biased document byte up to 255 times a query value, added in 16 bits)
// can never overflow: 4 * 255 * 32 = 32,640 <= 32,767.
constexpr int kQueryLevels = 32;
// The compressed index's residual rows (plaid_residual.hpp) keep 64: their AVX2 kernel widens
// every vpmaddubsw pair (2 * 255 * 64 = 32,640 <= 32,767).
constexpr int kResidualQueryLevels = 64;

// One row of dim values (finite) into out[0 .. dim) with `levels` a side; returns the scale.
float quantize_row(const float* x, std::int64_t dim, int levels, std::int8_t* out);

// n rows of x (n x dim, row-major, finite) into out (n x dim) and scales (n), with kDocLevels.
// threads <= 0 means one per available CPU.
void quantize_int8(const float* x, std::int64_t n, std::int64_t dim, std::int8_t* out, float* scales, int threads = 0);

}  // namespace colmax
