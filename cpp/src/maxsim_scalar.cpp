// The plain-loop MaxSim kernels: the specification, the portable fallback and the test oracle.
#include <limits>
#include <vector>

#include "colmax/quantize.hpp"
#include "convert.hpp"
#include "kernels.hpp"

namespace colmax::kernels {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// Float documents: float32 products of the query with each stored value widened exactly.
void score_float(const Batch& batch) {
  const DocMatrix& docs = *batch.docs;
  const std::size_t row_bytes = dtype_size(docs.dtype) * static_cast<std::size_t>(docs.dim);
  const auto* base = static_cast<const unsigned char*>(docs.data);
  for (std::int64_t b = 0; b < batch.count; ++b) {
    const std::int64_t d = batch.doc(b);
    const std::int64_t begin = docs.offsets[d], end = docs.offsets[d + 1];
    for (std::int64_t qi = 0; qi < batch.n_queries; ++qi) {
      const QueryMatrix& q = batch.queries[qi];
      float score = 0.0f;
      if (begin == end) score = kMinusInf;
      for (std::int64_t i = 0; i < q.n_tokens && begin < end; ++i) {
        const float* qrow = q.data + i * q.dim;
        float best = kMinusInf;
        for (std::int64_t j = begin; j < end; ++j) {
          const void* drow = base + static_cast<std::size_t>(j) * row_bytes;
          float dot = 0.0f;
          for (std::int64_t k = 0; k < q.dim; ++k) dot += qrow[k] * load_as_float(drow, k, docs.dtype);
          if (dot > best) best = dot;
        }
        score += best;
      }
      batch.out[qi * batch.out_stride + b] = score;
    }
  }
}

// int8 documents (colmax/quantize.hpp): score = sum_i s_i * max_j (s_j * <q8_i, d8_j>), the
// integer dot product exact, maxima over j in row order, the sum in query-token order.
void score_int8(const Batch& batch) {
  const DocMatrix& docs = *batch.docs;
  const std::int64_t dim = docs.dim;
  const auto* values = static_cast<const std::int8_t*>(docs.data);
  std::vector<std::vector<std::int8_t>> q8(static_cast<std::size_t>(batch.n_queries));
  std::vector<std::vector<float>> q_scales(static_cast<std::size_t>(batch.n_queries));
  for (std::int64_t qi = 0; qi < batch.n_queries; ++qi) {
    const QueryMatrix& q = batch.queries[qi];
    q8[qi].resize(static_cast<std::size_t>(q.n_tokens * dim));
    for (std::int64_t i = 0; i < q.n_tokens; ++i)
      q_scales[qi].push_back(quantize_row(q.data + i * dim, dim, kQueryLevels, q8[qi].data() + i * dim));
  }
  for (std::int64_t b = 0; b < batch.count; ++b) {
    const std::int64_t d = batch.doc(b);
    const std::int64_t begin = docs.offsets[d], end = docs.offsets[d + 1];
    for (std::int64_t qi = 0; qi < batch.n_queries; ++qi) {
      float score = begin == end ? kMinusInf : 0.0f;
      for (std::int64_t i = 0; i < batch.queries[qi].n_tokens && begin < end; ++i) {
        const std::int8_t* qrow = q8[qi].data() + i * dim;
        float best = kMinusInf;
        for (std::int64_t j = begin; j < end; ++j) {
          const std::int8_t* drow = values + j * dim;
          std::int32_t dot = 0;
          for (std::int64_t k = 0; k < dim; ++k) dot += std::int32_t(qrow[k]) * std::int32_t(drow[k]);
          const float similarity = docs.scales[j] * static_cast<float>(dot);
          if (similarity > best) best = similarity;
        }
        score += q_scales[qi][i] * best;
      }
      batch.out[qi * batch.out_stride + b] = score;
    }
  }
}

}  // namespace

void score_scalar(const Batch& batch) {
  if (batch.docs->dtype == DType::i8)
    score_int8(batch);
  else
    score_float(batch);
}

}  // namespace colmax::kernels
