// int8 quantization of rows (colmax/quantize.hpp), compiled once with the baseline flags so that
// every kernel quantizes queries with the very same instructions.
#include "colmax/quantize.hpp"

#include <algorithm>
#include <cmath>

#include "colmax/maxsim.hpp"
#include "dispatch.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

namespace colmax {
namespace {

// Rows per chunk of work: large enough to amortise a chunk's setup, small enough to balance.
constexpr std::int64_t kQuantizeChunkRows = 4096;

// Round to nearest, ties to even, for |v| <= 2^22: the sum with 1.5 * 2^23 keeps no fraction
// bits, and the default rounding mode rounds it to even (IEEE arithmetic: without -ffast-math
// the compiler may not fold (v + M) - M into v). A library nearbyint call per value would cost
// more than the quantization itself on baseline x86-64, which lacks SSE4.1's roundss.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

}  // namespace

float quantize_row(const float* x, std::int64_t dim, int levels, std::int8_t* out) {
  float m = 0.0f;
  for (std::int64_t k = 0; k < dim; ++k) m = std::max(m, std::fabs(x[k]));
  if (m == 0.0f) {
    std::fill(out, out + dim, std::int8_t(0));
    return 0.0f;
  }
  const float level = static_cast<float>(levels), inv = level / m;
  for (std::int64_t k = 0; k < dim; ++k)
    out[k] = static_cast<std::int8_t>(std::clamp(round_even(x[k] * inv), -level, level));
  return m / level;
}

void quantize_int8(const float* x, std::int64_t n, std::int64_t dim, std::int8_t* out, float* scales, int threads) {
  const std::int64_t chunks = (n + kQuantizeChunkRows - 1) / kQuantizeChunkRows;
  const kernels::QuantizeFn quantize = active_quantizer();
  parallel_for_chunks(chunks, resolve_threads(threads), [&](std::int64_t c) {
    const std::int64_t begin = c * kQuantizeChunkRows, end = std::min(n, begin + kQuantizeChunkRows);
    quantize(x + begin * dim, end - begin, dim, kDocLevels, out + begin * dim, scales + begin);
  });
}

namespace kernels {

void quantize_scalar(const float* x, std::int64_t n, std::int64_t dim, int levels, std::int8_t* out, float* scales) {
  for (std::int64_t r = 0; r < n; ++r) scales[r] = quantize_row(x + r * dim, dim, levels, out + r * dim);
}

}  // namespace kernels
}  // namespace colmax
