// Helpers shared by the compressed index's stages (plaid_<stage>.cpp): errors, input checks, the
// ranking order, the decoder bound to a codebook and the reader of documents' stored codes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "colmax/elias_fano.hpp"
#include "colmax/plaid.hpp"
#include "parallel.hpp"
#include "plaid_kernels.hpp"

namespace colmax::plaid::detail {

[[noreturn]] inline void fail(const std::string& message) { throw std::invalid_argument(message); }

inline std::string str(std::int64_t v) { return std::to_string(v); }

inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// The universe of a segment's inverted lists: its document rows (at least 1, as Elias-Fano needs;
// the lists of an empty segment are empty).
inline std::int64_t ivf_universe(std::int64_t n_docs) { return std::max<std::int64_t>(n_docs, 1); }

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

// (score descending, NaN last, then id ascending): a strict total order, so selections are
// unique and independent of the order candidates arrive in.
inline bool ranks_before(float sa, std::int64_t ia, float sb, std::int64_t ib) {
  const bool nan_a = std::isnan(sa), nan_b = std::isnan(sb);
  if (nan_a || nan_b) {
    if (nan_a != nan_b) return nan_b;
  } else if (sa != sb) {
    return sa > sb;
  }
  return ia < ib;
}

// A decoder bound to one codebook and the active kernels: the portable decoder's byte table is
// built once per call, and only when that decoder is the active one.
class Decoder {
 public:
  explicit Decoder(const Codebook& cb);
  // Decodes n rows into out, after checking their codes (row numbers in errors count from first_row).
  void operator()(const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n, float* out,
                  std::int64_t first_row = 0) const {
    check(codes, n, first_row);
    kernels_.decode(spec(), codes, residuals, n, out);
  }

 private:
  void check(const std::uint16_t* codes, std::int64_t n, std::int64_t first_row) const {
    for (std::int64_t r = 0; r < n; ++r) require_code(codes[r], cb_.n_centroids, first_row + r);
  }
  kernels::DecodeSpec spec() const {
    return {cb_.centroids, cb_.dim, cb_.nbits, cb_.weights, cb_.normalize, lut_.data()};
  }

  const Codebook& cb_;
  const kernels::PlaidKernels& kernels_;
  std::vector<float> lut_;
};

// Reads documents' stored codes (DocCodes), checking each blob against its token count, so a
// damaged file raises instead of yielding codes out of range.
class DocCodeReader {
 public:
  DocCodeReader(const DocCodes& codes, const std::int64_t* doc_offsets, std::int64_t n_docs, std::int64_t n_centroids)
      : c_(codes), tokens_(doc_offsets), n_docs_(n_docs), k_(n_centroids) {}

  // Document d's distinct codes, ascending, into out (room for its token count); returns how many.
  std::int64_t distinct(std::int64_t d, std::uint32_t* out) const {
    const Blob b = blob(d);
    if (!ef::decode(b.list, b.m, k_, out)) damaged(d);
    return b.m;
  }

  // Document d's code per stored token into out; `distinct` is scratch with room for its token count.
  void tokens(std::int64_t d, std::uint16_t* out, std::uint32_t* distinct) const {
    const Blob b = blob(d);
    if (!ef::decode(b.list, b.m, k_, distinct)) damaged(d);
    std::int64_t run = -1;
    for (std::int64_t t = 0; t < b.n_tokens; ++t) {
      run += b.runs[t >> 3] >> (t & 7) & 1;
      out[t] = static_cast<std::uint16_t>(distinct[run]);
    }
  }

  std::int64_t n_tokens(std::int64_t d) const { return tokens_[d + 1] - tokens_[d]; }

 private:
  struct Blob {
    const std::uint8_t* runs;
    std::int64_t n_tokens;
    const std::uint8_t* list;
    std::int64_t m;
  };

  Blob blob(std::int64_t d) const {
    if (d < 0 || d >= n_docs_) fail("document " + str(d) + " is out of range: the segment has " + str(n_docs_));
    const std::int64_t begin = c_.offsets[d], end = c_.offsets[d + 1], n = n_tokens(d), run_bytes = ceil_div(n, 8);
    if (begin < 0 || end < begin + run_bytes || end > c_.n_bytes) damaged(d);
    const std::uint8_t* runs = c_.bytes + begin;
    std::int64_t m = 0;
    for (std::int64_t i = 0; i < run_bytes; ++i) m += __builtin_popcount(runs[i]);
    const bool padding_clear = n % 8 == 0 || runs[run_bytes - 1] >> (n % 8) == 0;
    if ((n > 0 && (runs[0] & 1) == 0) || !padding_clear || end - begin - run_bytes != ef::encoded_bytes(m, k_))
      damaged(d);
    return {runs, n, runs + run_bytes, m};
  }

  [[noreturn]] void damaged(std::int64_t d) const {
    fail("the stored codes of document " + str(d) +
         " are damaged (they do not match its tokens); rebuild them with encode_doc_codes");
  }

  const DocCodes& c_;
  const std::int64_t* tokens_;
  std::int64_t n_docs_, k_;
};

}  // namespace colmax::plaid::detail
