// The plain-loop MaxSim kernel: the specification, the portable fallback and the test oracle.
#include <limits>

#include "convert.hpp"
#include "kernels.hpp"

namespace colmax::kernels {

void score_scalar(const Batch& batch) {
  const DocMatrix& docs = *batch.docs;
  const std::size_t row_bytes = dtype_size(docs.dtype) * static_cast<std::size_t>(docs.dim);
  const auto* base = static_cast<const unsigned char*>(docs.data);
  for (std::int64_t b = 0; b < batch.count; ++b) {
    const std::int64_t d = batch.doc(b);
    const std::int64_t begin = docs.offsets[d], end = docs.offsets[d + 1];
    for (std::int64_t qi = 0; qi < batch.n_queries; ++qi) {
      const QueryMatrix& q = batch.queries[qi];
      float score = 0.0f;
      if (begin == end) score = -std::numeric_limits<float>::infinity();
      for (std::int64_t i = 0; i < q.n_tokens && begin < end; ++i) {
        const float* qrow = q.data + i * q.dim;
        float best = -std::numeric_limits<float>::infinity();
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

}  // namespace colmax::kernels
