// The compressed index's hot loops, declared once per instruction set (see colmax/plaid.hpp).
// Kernels trust their input: the plaid_<stage>.cpp entry points validate before any kernel runs.
#pragma once

#include <cstdint>

#include "colmax/maxsim.hpp"

namespace colmax::kernels {

// One codebook's decoding inputs. `lut` is the portable kernel's table, built once per codebook:
// lut[byte * (8 / nbits) + j] is the weight of bucket j of a residual byte (unset for the SIMD
// decoders, which read `weights`).
struct DecodeSpec {
  const float* centroids;
  std::int64_t dim;
  int nbits;
  const float* weights;
  bool normalize;
  const float* lut;
};

struct PlaidKernels {
  // Rows [0, n) of x against every centroid: codes[i] = argmax (ties to the lower index), best[i] = max.
  void (*assign)(const float* x, std::int64_t n, std::int64_t dim, const float* centroids, std::int64_t n_centroids,
                 std::int32_t* codes, float* best);
  // out[c * nq_pad + i] = <q_i, C_c> for c < n_centroids and i < q.n_tokens; nq_pad is a multiple
  // of 16, out is 64-byte aligned and zeroed by the caller (padding lanes stay zero).
  void (*centroid_scores)(const QueryMatrix& q, const float* centroids, std::int64_t n_centroids, std::int64_t nq_pad,
                          float* out);
  // out[b] = sum_{i < nq} max_{t in doc ids[b]} s[codes[t] * nq_pad + i], summed in order of i
  // (so every ISA gives the same bits); a document without tokens scores -infinity.
  void (*approx_scores)(const float* s, std::int64_t nq, std::int64_t nq_pad, const std::uint16_t* codes,
                        const std::int64_t* offsets, const std::int64_t* ids, std::int64_t count, float* out);
  // Rows [0, n): out[r] = centroid codes[r] + the weights of row r's residual buckets, scaled to
  // unit length when spec.normalize (a zero row stays zero).
  void (*decode)(const DecodeSpec& spec, const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n,
                 float* out);
};

extern const PlaidKernels plaid_scalar;
#if defined(COLMAX_X86)
extern const PlaidKernels plaid_avx2;
extern const PlaidKernels plaid_avx512;
#endif

}  // namespace colmax::kernels
