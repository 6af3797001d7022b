// The compressed index's plain-loop kernels: the specification that plaid_tiles.inl's SIMD
// kernels follow, and the portable fallback.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "colmax/quantize.hpp"
#include "plaid_kernels.hpp"

namespace colmax::kernels {
namespace {

void assign_scalar(const float* x, std::int64_t n, std::int64_t dim, const float* centroids, std::int64_t n_centroids,
                   std::int32_t* codes, float* best) {
  for (std::int64_t r = 0; r < n; ++r) {
    float top = -std::numeric_limits<float>::infinity();
    std::int32_t arg = 0;
    for (std::int64_t c = 0; c < n_centroids; ++c) {
      float dot = 0.0f;
      for (std::int64_t k = 0; k < dim; ++k) dot += x[r * dim + k] * centroids[c * dim + k];
      if (dot > top) {
        top = dot;
        arg = static_cast<std::int32_t>(c);
      }
    }
    codes[r] = arg;
    if (best != nullptr) best[r] = top;
  }
}

void centroid_scores_scalar(const QueryMatrix& q, const float* centroids, std::int64_t n_centroids, std::int64_t nq_pad,
                            float* out) {
  for (std::int64_t c = 0; c < n_centroids; ++c)
    for (std::int64_t i = 0; i < q.n_tokens; ++i) {
      float dot = 0.0f;
      for (std::int64_t k = 0; k < q.dim; ++k) dot += q.data[i * q.dim + k] * centroids[c * q.dim + k];
      out[c * nq_pad + i] = dot;
    }
}

void approx_scores_scalar(const float* s, std::int64_t nq, std::int64_t nq_pad, const std::uint16_t* codes,
                          const std::int64_t* offsets, const std::int64_t* ids, std::int64_t count, float* out) {
  std::vector<float> maxes(static_cast<std::size_t>(nq));
  for (std::int64_t b = 0; b < count; ++b) {
    const std::int64_t begin = offsets[ids[b]], end = offsets[ids[b] + 1];
    std::fill(maxes.begin(), maxes.end(), -std::numeric_limits<float>::infinity());
    for (std::int64_t t = begin; t < end; ++t)
      for (std::int64_t i = 0; i < nq; ++i) maxes[i] = std::max(maxes[i], s[codes[t] * nq_pad + i]);
    float score = begin == end ? -std::numeric_limits<float>::infinity() : 0.0f;
    for (std::int64_t i = 0; i < nq && begin < end; ++i) score += maxes[i];
    out[b] = score;
  }
}

// Portable decoding: each residual byte's 8 / NBITS weights come from the codebook's byte table.
// Rows [0, n) go unscaled to rows + r * stride; finish(r, row, sum of squares) scales or
// quantizes each. The sum of squares is taken in eight partial sums so the compiler vectorises it.
template <int NBITS, class Finish>
void decode_rows_scalar(const DecodeSpec& spec, const std::uint16_t* codes, const std::uint8_t* residuals,
                        std::int64_t n, float* rows, std::int64_t stride, Finish&& finish) {
  constexpr int per_byte = 8 / NBITS;
  const std::int64_t dim = spec.dim, bytes = dim * NBITS / 8;
  for (std::int64_t r = 0; r < n; ++r) {
    const float* c = spec.centroids + static_cast<std::int64_t>(codes[r]) * dim;
    const std::uint8_t* in = residuals + r * bytes;
    float* o = rows + r * stride;
    for (std::int64_t i = 0; i < bytes; ++i) {
      const float* w = spec.lut + in[i] * per_byte;
      for (int j = 0; j < per_byte; ++j) o[i * per_byte + j] = c[i * per_byte + j] + w[j];
    }
    float partial[8] = {};
    std::int64_t j = 0;
    for (; j + 8 <= dim; j += 8)
      for (int u = 0; u < 8; ++u) partial[u] += o[j + u] * o[j + u];
    for (; j < dim; ++j) partial[0] += o[j] * o[j];
    finish(r, o,
           ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
               ((partial[4] + partial[5]) + (partial[6] + partial[7])));
  }
}

template <int NBITS>
void decode_float(const DecodeSpec& spec, const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n,
                  float* out) {
  decode_rows_scalar<NBITS>(spec, codes, residuals, n, out, spec.dim, [&](std::int64_t, float* o, float squares) {
    if (!spec.normalize || squares <= 0.0f) return;
    const float inv = 1.0f / std::sqrt(squares);
    for (std::int64_t k = 0; k < spec.dim; ++k) o[k] *= inv;
  });
}

template <int NBITS>
void decode_quantized(const DecodeSpec& spec, const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n,
                      std::int8_t* values, float* scales) {
  std::vector<float> row(static_cast<std::size_t>(spec.dim));
  decode_rows_scalar<NBITS>(spec, codes, residuals, n, row.data(), 0, [&](std::int64_t r, float* o, float squares) {
    scales[r] = quantize_row(o, spec.dim, kDocLevels, values + r * spec.dim);
    if (spec.normalize && squares > 0.0f) scales[r] *= 1.0f / std::sqrt(squares);
  });
}

void decode_scalar(const DecodeSpec& spec, const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n,
                   float* out) {
  switch (spec.nbits) {
    case 1: decode_float<1>(spec, codes, residuals, n, out); break;
    case 2: decode_float<2>(spec, codes, residuals, n, out); break;
    case 4: decode_float<4>(spec, codes, residuals, n, out); break;
    default: decode_float<8>(spec, codes, residuals, n, out); break;
  }
}

void decode_int8_scalar(const DecodeSpec& spec, const std::uint16_t* codes, const std::uint8_t* residuals,
                        std::int64_t n, std::int8_t* values, float* scales) {
  switch (spec.nbits) {
    case 1: decode_quantized<1>(spec, codes, residuals, n, values, scales); break;
    case 2: decode_quantized<2>(spec, codes, residuals, n, values, scales); break;
    case 4: decode_quantized<4>(spec, codes, residuals, n, values, scales); break;
    default: decode_quantized<8>(spec, codes, residuals, n, values, scales); break;
  }
}

}  // namespace

const PlaidKernels plaid_scalar = {assign_scalar, centroid_scores_scalar, approx_scores_scalar, decode_scalar,
                                   decode_int8_scalar};

}  // namespace colmax::kernels
