// Helpers shared by the compressed index's stages (plaid_<stage>.cpp): errors, input checks and the
// decoder bound to a codebook.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "colmax/plaid.hpp"
#include "plaid_kernels.hpp"

namespace colmax::plaid::detail {

[[noreturn]] inline void fail(const std::string& message) { throw std::invalid_argument(message); }

inline std::string str(std::int64_t v) { return std::to_string(v); }

inline int resolve_threads(int threads) { return threads <= 0 ? default_threads() : threads; }

inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

inline void require_finite(const float* v, std::int64_t count, std::int64_t dim, const char* what) {
  for (std::int64_t i = 0; i < count; ++i)
    if (!std::isfinite(v[i]))
      fail(std::string(what) + " contains NaN or infinity (row " + str(i / dim) + "); pass finite values");
}

inline void require_code(std::uint16_t code, std::int64_t n_centroids, std::int64_t row) {
  if (code >= n_centroids)
    fail("code " + str(code) + " of token " + str(row) + " is out of range: the codebook has " + str(n_centroids) +
         " centroids; codes must come from the same codebook");
}

// A decoder bound to one codebook and the active kernels: the portable decoder's byte table is
// built once per call, and only when that decoder is the active one.
class Decoder {
 public:
  explicit Decoder(const Codebook& cb);
  // Decodes n rows into out, after checking their codes (row numbers in errors count from first_row).
  void operator()(const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n, float* out,
                  std::int64_t first_row = 0) const {
    for (std::int64_t r = 0; r < n; ++r) require_code(codes[r], cb_.n_centroids, first_row + r);
    const kernels::DecodeSpec spec{cb_.centroids, cb_.dim, cb_.nbits, cb_.weights, cb_.normalize, lut_.data()};
    decode_(spec, codes, residuals, n, out);
  }

 private:
  const Codebook& cb_;
  decltype(kernels::PlaidKernels::decode) decode_;
  std::vector<float> lut_;
};

}  // namespace colmax::plaid::detail
