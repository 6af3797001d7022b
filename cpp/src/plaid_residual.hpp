// Stage (d) of the staged search straight from the compressed rows: MaxSim without decompressing.
//
// A row decodes to x = C[c] + w (w_k the weight of dimension k's bucket), scaled by 1 / |x| when
// the codebook normalizes. Its similarity with query token q splits as
//   <q, x> / |x| = (<q, C[c]> + <q, w>) / |x|
// where <q, C[c]> is S[c][i], stage (a)'s table, computed already. Only <q, w> and |x| remain,
// and both come from small integers: the bucket weights as int8 (K = quantize_row(weights, 127),
// scale k) replace w, and the query token as int8 (quantize_row(q, kResidualQueryLevels), scale s):
//   sim_ij = (float(<q8_i, K_j>) * w_i + S[c_j][i]) * inv_j,   w_i = s_i * k,
//   |x_j|^2 ~ |C[c]|^2 + 2 (cs_c * k) * float(<C8_c, K_j>) + (k * k) * float(<K_j, K_j>),
// with C8_c, cs_c the centroid as int8 (quantize_row, per search), inv_j = 1 / sqrt(|x_j|^2) (0 for
// a zero row; 1 without normalizing). score = sum_i max_j sim_ij, in query-token order. No row is
// decoded to floats and no centroid row is read beyond its int8 copy (L2-resident where float32
// rows came from L3: profiled in docs/plaid.md). Every product is rounded as written (no fused
// multiply-adds), so each instruction set gives the scalar kernel's bits for the same inputs.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "colmax/maxsim.hpp"

namespace colmax::kernels {

// What one search prepares once for scoring rows from their residuals.
struct ResidualBook {
  const float* table;   // S: n_centroids x nq_pad, <q_i, C[c]> (stage (a)); 64-byte aligned, padding lanes zero
  std::int64_t nq_pad;  // a multiple of 16
  std::int64_t dim;
  int nbits;                      // 1, 2, 4 or 8
  bool normalize;                 // scale rows to unit length
  const std::uint8_t* biased;     // 2^nbits bucket weights as int8, plus 128 (the kernels' unsigned operand)
  const std::uint8_t* spread;     // per packed byte value, its 8 / nbits dimensions' biased bytes
  float weight_scale;             // k: weight b ~ k * (biased[b] - 128)
  const std::int8_t* centroids8;  // n_centroids x dim, each row quantize_row(C[c], 127)
  const float* centroid_scale;    // cs_c
  const float* centroid_norm2;    // |C[c]|^2, in float32
};

// The documents of one chunk: document b's rows are codes[offsets[b] .. offsets[b + 1]) and its
// packed residual rows start at residuals[b] (dim * nbits / 8 bytes each, back to back).
struct ResidualBatch {
  const ResidualBook* book;
  const QueryMatrix* query;
  const std::uint16_t* codes;
  const std::uint8_t* const* residuals;
  const std::int64_t* offsets;
  std::int64_t count;
  float* out;  // count scores; a document without rows scores -infinity
};

using ResidualFn = void (*)(const ResidualBatch&);

// A ResidualBook and the tables it points to, built for one search from the codebook (its
// centroids, weights, nbits and normalize) and stage (a)'s table.
struct ResidualTables {
  std::vector<std::uint8_t> biased, spread;
  std::vector<std::int8_t> centroids8;
  std::vector<float> centroid_scale, centroid_norm2;
  ResidualBook book;

  ResidualTables(const float* centroids, std::int64_t n_centroids, std::int64_t dim, int nbits, const float* weights,
                 bool normalize, const float* table, std::int64_t nq_pad);
  ResidualTables(const ResidualTables&) = delete;
  ResidualTables& operator=(const ResidualTables&) = delete;
};

// 1 / |x| of a normalized codebook's row from its integer dot products <C8_c, K> and <K, K> (see
// above), shared by every kernel so that all compute the same float operations.
inline float residual_inv_norm(const ResidualBook& book, std::uint16_t code, std::int32_t cross, std::int32_t self) {
  const float k = book.weight_scale;
  const float c = (book.centroid_scale[code] * k) * static_cast<float>(cross);
  const float r = (k * k) * static_cast<float>(self);
  const float squares = (book.centroid_norm2[code] + (c + c)) + r;
  return squares > 0.0f ? 1.0f / std::sqrt(squares) : 0.0f;
}

// A packed row's dim biased bytes (spread: 8 / nbits bytes per packed byte value).
inline void spread_row(const ResidualBook& book, const std::uint8_t* packed, std::uint8_t* out) {
  const int per_byte = 8 / book.nbits;
  for (std::int64_t m = 0; m < book.dim / per_byte; ++m)
    for (int j = 0; j < per_byte; ++j) out[m * per_byte + j] = book.spread[packed[m] * per_byte + j];
}

void score_residuals_scalar(const ResidualBatch& batch);
#if defined(COLMAX_X86)
void score_residuals_avx2(const ResidualBatch& batch);
void score_residuals_avxvnni(const ResidualBatch& batch);
void score_residuals_avx512vnni(const ResidualBatch& batch);
#endif

}  // namespace colmax::kernels
