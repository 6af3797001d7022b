// The residual codec: the codebook's checks, compress and decompress, the decoder they share with
// exhaustive search, and the tables staged search scores residual rows with (plaid_residual.hpp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "colmax/plaid.hpp"
#include "colmax/quantize.hpp"
#include "dispatch.hpp"
#include "parallel.hpp"
#include "plaid_common.hpp"
#include "plaid_kernels.hpp"
#include "plaid_residual.hpp"

namespace colmax::kernels {

ResidualTables::ResidualTables(const float* centroids, std::int64_t n_centroids, std::int64_t dim, int nbits,
                               const float* weights, bool normalize, const float* table, std::int64_t nq_pad) {
  const std::int64_t buckets = std::int64_t(1) << nbits, per_byte = 8 / nbits;
  std::vector<std::int8_t> k(static_cast<std::size_t>(buckets));
  const float weight_scale = quantize_row(weights, buckets, kDocLevels, k.data());
  for (std::int8_t v : k) biased.push_back(static_cast<std::uint8_t>(v + 128));
  for (unsigned byte = 0; byte < 256; ++byte)
    for (std::int64_t j = 0; j < per_byte; ++j) spread.push_back(biased[(byte >> (j * nbits)) & (buckets - 1)]);
  biased.resize(std::max<std::size_t>(biased.size(), 16), 128);  // vpshufb reads 16
  if (normalize) {
    centroids8.resize(static_cast<std::size_t>(n_centroids * dim));
    centroid_scale.resize(static_cast<std::size_t>(n_centroids));
    active_quantizer()(centroids, n_centroids, dim, kDocLevels, centroids8.data(), centroid_scale.data());
    for (std::int64_t c = 0; c < n_centroids; ++c) {  // eight partial sums: the compiler vectorises them
      const float* row = centroids + c * dim;
      float partial[8] = {};
      std::int64_t j = 0;
      for (; j + 8 <= dim; j += 8)
        for (int u = 0; u < 8; ++u) partial[u] += row[j + u] * row[j + u];
      for (; j < dim; ++j) partial[0] += row[j] * row[j];
      centroid_norm2.push_back(((partial[0] + partial[1]) + (partial[2] + partial[3])) +
                               ((partial[4] + partial[5]) + (partial[6] + partial[7])));
    }
  }
  book = {table,
          nq_pad,
          dim,
          nbits,
          normalize,
          biased.data(),
          spread.data(),
          weight_scale,
          centroids8.data(),
          centroid_scale.data(),
          centroid_norm2.data()};
}

}  // namespace colmax::kernels

namespace colmax::plaid {

using detail::ceil_div, detail::Decoder, detail::fail, detail::require_code, detail::require_finite, detail::str;

namespace {

// Rows per chunk of work: large enough to amortise a chunk's setup, small enough to balance.
constexpr std::int64_t kCodecChunkRows = 4096;

// Bucket weights of each byte of a residual row, lut[byte * (8 / NBITS) + j], for the portable decoder.
template <int NBITS>
std::vector<float> byte_table(const float* weights) {
  constexpr int per_byte = 8 / NBITS;
  constexpr unsigned mask = (1u << NBITS) - 1;
  std::vector<float> lut(256 * per_byte);
  for (unsigned byte = 0; byte < 256; ++byte)
    for (int j = 0; j < per_byte; ++j) lut[byte * per_byte + j] = weights[(byte >> (j * NBITS)) & mask];
  return lut;
}

}  // namespace

detail::Decoder::Decoder(const Codebook& cb) : cb_(cb), kernels_(active_plaid_kernels()) {
  if (&kernels_ != &kernels::plaid_scalar) return;  // the SIMD decoders need no table
  switch (cb.nbits) {
    case 1: lut_ = byte_table<1>(cb.weights); break;
    case 2: lut_ = byte_table<2>(cb.weights); break;
    case 4: lut_ = byte_table<4>(cb.weights); break;
    default: lut_ = byte_table<8>(cb.weights); break;
  }
}

std::int64_t packed_bytes(std::int64_t dim, int nbits) {
  if (nbits != 1 && nbits != 2 && nbits != 4 && nbits != 8) fail("nbits must be 1, 2, 4 or 8, got " + str(nbits));
  if (dim < 1) fail("dimension must be at least 1");
  if (dim * nbits % 8 != 0)
    fail("dim * nbits must be a multiple of 8 so rows pack into whole bytes: dim " + str(dim) + " with nbits " +
         str(nbits) + "; use a larger nbits or a dimension that is a multiple of " + str(8 / nbits));
  return dim * nbits / 8;
}

void validate(const Codebook& cb) {
  if (cb.centroids == nullptr) fail("the codebook has no centroids");
  if (cb.n_centroids < 1 || cb.n_centroids > 65536)
    fail("the codebook needs 1 to 65536 centroids (codes are uint16), got " + str(cb.n_centroids));
  packed_bytes(cb.dim, cb.nbits);
  const std::int64_t buckets = std::int64_t(1) << cb.nbits;
  if (cb.cutoffs != nullptr)
    for (std::int64_t i = 0; i < buckets - 1; ++i) {
      if (!std::isfinite(cb.cutoffs[i])) fail("cutoffs contain NaN or infinity; pass finite bucket boundaries");
      if (i > 0 && cb.cutoffs[i] < cb.cutoffs[i - 1])
        fail("cutoffs must be sorted ascending (entry " + str(i) + " is smaller than entry " + str(i - 1) +
             "); pass numpy.sort(cutoffs)");
    }
  if (cb.weights != nullptr)
    for (std::int64_t i = 0; i < buckets; ++i)
      if (!std::isfinite(cb.weights[i])) fail("weights contain NaN or infinity; pass finite bucket values");
}

void compress(const Codebook& cb, const float* x, const std::uint16_t* codes, std::int64_t n, std::uint8_t* out,
              int threads) {
  validate(cb);
  if (cb.cutoffs == nullptr) fail("compress needs the codebook's cutoffs");
  if (n < 0) fail("negative row count");
  if (n > 0 && (x == nullptr || codes == nullptr || out == nullptr)) fail("null data pointer");
  const std::int64_t dim = cb.dim, bytes = packed_bytes(dim, cb.nbits);
  const float* cut_end = cb.cutoffs + ((std::int64_t(1) << cb.nbits) - 1);
  parallel_for_chunks(ceil_div(n, kCodecChunkRows), resolve_threads(threads), [&](std::int64_t c) {
    const std::int64_t begin = c * kCodecChunkRows, end = std::min(begin + kCodecChunkRows, n);
    require_finite(x + begin * dim, (end - begin) * dim, dim, "x");
    for (std::int64_t r = begin; r < end; ++r) {
      require_code(codes[r], cb.n_centroids, r);
      const float* row = x + r * dim;
      const float* centroid = cb.centroids + codes[r] * dim;
      std::uint8_t* dst = out + r * bytes;
      std::fill(dst, dst + bytes, 0);
      for (std::int64_t j = 0; j < dim; ++j) {
        const auto bucket =
            static_cast<unsigned>(std::upper_bound(cb.cutoffs, cut_end, row[j] - centroid[j]) - cb.cutoffs);
        dst[j * cb.nbits / 8] |= static_cast<std::uint8_t>(bucket << (j * cb.nbits % 8));
      }
    }
  });
}

void decompress(const Codebook& cb, const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n,
                float* out, int threads) {
  validate(cb);
  if (cb.weights == nullptr) fail("decompress needs the codebook's weights");
  if (n < 0) fail("negative row count");
  if (n > 0 && (codes == nullptr || residuals == nullptr || out == nullptr)) fail("null data pointer");
  const Decoder decode(cb);
  parallel_for_chunks(ceil_div(n, kCodecChunkRows), resolve_threads(threads), [&](std::int64_t c) {
    const std::int64_t begin = c * kCodecChunkRows, end = std::min(begin + kCodecChunkRows, n);
    decode(codes + begin, residuals + begin * (cb.dim * cb.nbits / 8), end - begin, out + begin * cb.dim, begin);
  });
}

}  // namespace colmax::plaid
