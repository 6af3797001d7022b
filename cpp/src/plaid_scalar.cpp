// The compressed index's plain-loop kernels: the specification that plaid_tiles.inl's SIMD
// kernels follow, and the portable fallback.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "colmax/quantize.hpp"
#include "plaid_kernels.hpp"
#include "plaid_residual.hpp"

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
// The norm is summed in eight partial sums so the compiler vectorises it.
template <int NBITS>
void decode_rows_scalar(const DecodeSpec& spec, const std::uint16_t* codes, const std::uint8_t* residuals,
                        std::int64_t n, float* out) {
  constexpr int per_byte = 8 / NBITS;
  const std::int64_t dim = spec.dim, bytes = dim * NBITS / 8;
  for (std::int64_t r = 0; r < n; ++r) {
    const float* c = spec.centroids + static_cast<std::int64_t>(codes[r]) * dim;
    const std::uint8_t* in = residuals + r * bytes;
    float* o = out + r * dim;
    for (std::int64_t i = 0; i < bytes; ++i) {
      const float* w = spec.lut + in[i] * per_byte;
      for (int j = 0; j < per_byte; ++j) o[i * per_byte + j] = c[i * per_byte + j] + w[j];
    }
    if (!spec.normalize) continue;
    float partial[8] = {};
    std::int64_t j = 0;
    for (; j + 8 <= dim; j += 8)
      for (int u = 0; u < 8; ++u) partial[u] += o[j + u] * o[j + u];
    for (; j < dim; ++j) partial[0] += o[j] * o[j];
    const float squares = ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
                          ((partial[4] + partial[5]) + (partial[6] + partial[7]));
    if (squares > 0.0f) {
      const float inv = 1.0f / std::sqrt(squares);
      for (std::int64_t k = 0; k < dim; ++k) o[k] *= inv;
    }
  }
}

void decode_scalar(const DecodeSpec& spec, const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n,
                   float* out) {
  switch (spec.nbits) {
    case 1: decode_rows_scalar<1>(spec, codes, residuals, n, out); break;
    case 2: decode_rows_scalar<2>(spec, codes, residuals, n, out); break;
    case 4: decode_rows_scalar<4>(spec, codes, residuals, n, out); break;
    default: decode_rows_scalar<8>(spec, codes, residuals, n, out); break;
  }
}

}  // namespace

// The specification of plaid_residual.hpp, one operation at a time.
void score_residuals_scalar(const ResidualBatch& batch) {
  const ResidualBook& book = *batch.book;
  const QueryMatrix& q = *batch.query;
  const std::int64_t dim = book.dim, row_bytes = dim * book.nbits / 8;
  std::vector<std::int8_t> q8(static_cast<std::size_t>(q.n_tokens * dim));
  std::vector<float> w(static_cast<std::size_t>(q.n_tokens)), best(w.size());
  for (std::int64_t i = 0; i < q.n_tokens; ++i)
    w[i] = quantize_row(q.data + i * dim, dim, kResidualQueryLevels, q8.data() + i * dim) * book.weight_scale;
  std::vector<std::uint8_t> biased(static_cast<std::size_t>(dim));
  for (std::int64_t b = 0; b < batch.count; ++b) {
    const std::int64_t begin = batch.offsets[b], end = batch.offsets[b + 1];
    std::fill(best.begin(), best.end(), -std::numeric_limits<float>::infinity());
    for (std::int64_t r = begin; r < end; ++r) {
      const std::uint16_t code = batch.codes[r];
      spread_row(book, batch.residuals[b] + (r - begin) * row_bytes, biased.data());
      float inv = 1.0f;
      if (book.normalize) {
        const std::int8_t* c8 = book.centroids8 + code * dim;
        std::int32_t cross = 0, self = 0;
        for (std::int64_t k = 0; k < dim; ++k) {
          const std::int32_t v = std::int32_t(biased[k]) - 128;
          cross += v * c8[k];
          self += v * v;
        }
        inv = residual_inv_norm(book, code, cross, self);
      }
      const float* s = book.table + code * book.nq_pad;
      for (std::int64_t i = 0; i < q.n_tokens; ++i) {
        std::int32_t dot = 0;
        for (std::int64_t k = 0; k < dim; ++k) dot += std::int32_t(q8[i * dim + k]) * (std::int32_t(biased[k]) - 128);
        const float sim = (static_cast<float>(dot) * w[i] + s[i]) * inv;
        if (sim > best[i]) best[i] = sim;
      }
    }
    float score = begin == end ? -std::numeric_limits<float>::infinity() : 0.0f;
    for (std::int64_t i = 0; i < q.n_tokens && begin < end; ++i) score += best[i];
    batch.out[b] = score;
  }
}

const PlaidKernels plaid_scalar = {assign_scalar, centroid_scores_scalar, approx_scores_scalar, decode_scalar};

}  // namespace colmax::kernels
