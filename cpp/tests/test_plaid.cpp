// The compressed index against plain-loop references: assignment per ISA (odd dimensions,
// centroid counts off the tile height, ties), the codec's bit layout and error bound, the
// inverted file, and search (exhaustive vs brute force, full probing vs exhaustive, allowed
// subsets, segments, pruning, threads, exact vectors) plus every validation error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "aligned.hpp"
#include "colmax/elias_fano.hpp"
#include "colmax/isa.hpp"
#include "colmax/maxsim.hpp"
#include "colmax/plaid.hpp"
#include "colmax/quantize.hpp"
#include "dispatch.hpp"
#include "plaid_residual.hpp"

namespace {

using colmax::Isa;
namespace plaid = colmax::plaid;
namespace kernels = colmax::kernels;

// Forces one ISA for a scope.
class IsaScope {
 public:
  explicit IsaScope(Isa isa) : before_(colmax::active_isa()) { colmax::set_active_isa(isa); }
  ~IsaScope() { colmax::set_active_isa(before_); }

 private:
  Isa before_;
};

std::vector<float> uniform(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

double dot(const float* a, const float* b, std::int64_t dim) {
  double s = 0;
  for (std::int64_t k = 0; k < dim; ++k) s += double(a[k]) * b[k];
  return s;
}

struct AssignShape {
  std::int64_t dim, n, k;
};

class Assign : public ::testing::TestWithParam<std::tuple<Isa, AssignShape>> {};

TEST_P(Assign, MatchesBruteForce) {
  const auto [isa, shape] = GetParam();
  const IsaScope scope(isa);
  const auto x = uniform(shape.n * shape.dim, 1), c = uniform(shape.k * shape.dim, 2);
  std::vector<std::int32_t> codes(shape.n);
  std::vector<float> best(shape.n);
  plaid::assign(x.data(), shape.n, shape.dim, c.data(), shape.k, codes.data(), best.data(), 2);
  const double tol = 1e-5 * shape.dim + 1e-6;
  for (std::int64_t r = 0; r < shape.n; ++r) {
    double top = -1e300, second = -1e300;
    std::int64_t arg = 0;
    for (std::int64_t j = 0; j < shape.k; ++j) {
      const double s = dot(&x[r * shape.dim], &c[j * shape.dim], shape.dim);
      if (s > top) {
        second = top, top = s, arg = j;
      } else if (s > second) {
        second = s;
      }
    }
    ASSERT_GE(codes[r], 0);
    ASSERT_LT(codes[r], shape.k);
    EXPECT_NEAR(dot(&x[r * shape.dim], &c[codes[r] * shape.dim], shape.dim), top, tol) << "row " << r;
    EXPECT_NEAR(best[r], top, tol) << "row " << r;
    if (top - second > 2 * tol) EXPECT_EQ(codes[r], arg) << "row " << r;
  }
}

TEST_P(Assign, TiesGoToTheLowerIndex) {
  const auto [isa, shape] = GetParam();
  const IsaScope scope(isa);
  // Every centroid equal: every row ties everywhere and must pick centroid 0; then centroids 3
  // and k-1 copy a row's best centroid, which must keep the lower of the tied indices.
  std::vector<float> c(shape.k * shape.dim, 0.5f);
  const auto x = uniform(shape.n * shape.dim, 3);
  std::vector<std::int32_t> codes(shape.n);
  plaid::assign(x.data(), shape.n, shape.dim, c.data(), shape.k, codes.data(), nullptr, 1);
  for (std::int32_t code : codes) EXPECT_EQ(code, 0);

  c = uniform(shape.k * shape.dim, 4);
  plaid::assign(x.data(), 1, shape.dim, c.data(), shape.k, codes.data(), nullptr, 1);
  const std::int32_t winner = codes[0];
  if (winner < 3 || shape.k < 5) return;
  std::copy(&c[winner * shape.dim], &c[(winner + 1) * shape.dim], &c[3 * shape.dim]);
  std::copy(&c[winner * shape.dim], &c[(winner + 1) * shape.dim], &c[(shape.k - 1) * shape.dim]);
  plaid::assign(x.data(), 1, shape.dim, c.data(), shape.k, codes.data(), nullptr, 1);
  EXPECT_EQ(codes[0], 3);
}

std::vector<Isa> all_supported() { return colmax::supported_isas(); }

INSTANTIATE_TEST_SUITE_P(Plaid, Assign,
                         ::testing::Combine(::testing::ValuesIn(all_supported()),
                                            ::testing::Values(AssignShape{1, 40, 3}, AssignShape{7, 300, 37},
                                                              AssignShape{128, 300, 23}, AssignShape{130, 70, 11},
                                                              AssignShape{384, 33, 17})),
                         [](const auto& info) {
                           const AssignShape s = std::get<1>(info.param);
                           return std::string(colmax::isa_name(std::get<0>(info.param))) + "_dim" +
                                  std::to_string(s.dim) + "_k" + std::to_string(s.k);
                         });

TEST(PlaidAssign, ThreadCountDoesNotChangeResults) {
  const std::int64_t n = 1500, dim = 24, k = 45;
  const auto x = uniform(n * dim, 5), c = uniform(k * dim, 6);
  std::vector<std::int32_t> codes1(n), codes(n);
  std::vector<float> best1(n), best(n);
  plaid::assign(x.data(), n, dim, c.data(), k, codes1.data(), best1.data(), 1);
  for (int threads : {2, 3, 7}) {
    plaid::assign(x.data(), n, dim, c.data(), k, codes.data(), best.data(), threads);
    EXPECT_EQ(codes, codes1);
    EXPECT_EQ(best, best1);
  }
}

// Unit rows around n_clusters random unit directions, as token vectors gather around topics.
std::vector<float> clustered_rows(std::int64_t n, std::int64_t dim, std::int64_t n_clusters, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centers(n_clusters * dim), x(n * dim);
  for (float& v : centers) v = normal(rng);
  std::uniform_int_distribution<std::int64_t> pick(0, n_clusters - 1);
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int64_t c = pick(rng);
    double squares = 0;
    for (std::int64_t j = 0; j < dim; ++j) {
      x[r * dim + j] = centers[c * dim + j] / std::sqrt(float(dim)) + 0.5f * normal(rng) / std::sqrt(float(dim));
      squares += double(x[r * dim + j]) * x[r * dim + j];
    }
    for (std::int64_t j = 0; j < dim; ++j) x[r * dim + j] = static_cast<float>(x[r * dim + j] / std::sqrt(squares));
  }
  return x;
}

class AssignGrouped : public ::testing::TestWithParam<Isa> {};

TEST_P(AssignGrouped, ProbingEveryGroupIsExact) {
  const IsaScope scope(GetParam());
  const std::int64_t n = 700, dim = 19, k = 150;  // 12 groups
  const auto x = uniform(n * dim, 21), c = uniform(k * dim, 22);
  std::vector<std::int32_t> exact(n), grouped(n);
  std::vector<float> exact_best(n), grouped_best(n);
  plaid::assign(x.data(), n, dim, c.data(), k, exact.data(), exact_best.data(), 2);
  plaid::assign_grouped(x.data(), n, dim, c.data(), k, 12, grouped.data(), grouped_best.data(), 2);
  EXPECT_EQ(grouped, exact);
  EXPECT_EQ(grouped_best, exact_best);
}

TEST_P(AssignGrouped, TakesTheBestCentroidOfTheProbedGroups) {
  const IsaScope scope(GetParam());
  // 9,000 rows: more than one chunk of rows; 576 centroids in 24 groups, 3 probed.
  const std::int64_t n = 9000, dim = 32, k = 576;
  const auto rows = clustered_rows(n + k, dim, 300, 23);  // centroids: k of the rows, as k-means seeds them
  const std::vector<float> x(rows.begin(), rows.begin() + n * dim), c(rows.begin() + n * dim, rows.end());
  std::vector<std::int32_t> exact(n), grouped(n);
  std::vector<float> exact_best(n), grouped_best(n);
  plaid::assign(x.data(), n, dim, c.data(), k, exact.data(), exact_best.data(), 2);
  plaid::assign_grouped(x.data(), n, dim, c.data(), k, 3, grouped.data(), grouped_best.data(), 2);
  std::int64_t same = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    ASSERT_GE(grouped[r], 0);
    ASSERT_LT(grouped[r], k);
    EXPECT_NEAR(dot(&x[r * dim], &c[grouped[r] * dim], dim), grouped_best[r], 1e-5) << "row " << r;
    EXPECT_LE(grouped_best[r], exact_best[r]) << "row " << r;
    same += grouped[r] == exact[r];
  }
  // The probed 1/8 of the centroids hold the nearest one for most clustered rows (0.88 measured),
  // where groups blind to the rows would hold it for about 1/8 of them.
  EXPECT_GT(static_cast<double>(same) / n, 0.8);
}

INSTANTIATE_TEST_SUITE_P(Plaid, AssignGrouped, ::testing::ValuesIn(all_supported()),
                         [](const auto& info) { return std::string(colmax::isa_name(info.param)); });

TEST(PlaidAssignGrouped, ThreadCountDoesNotChangeResults) {
  const std::int64_t n = 9000, dim = 16, k = 300;
  const auto x = clustered_rows(n, dim, 50, 25), c = uniform(k * dim, 26);
  std::vector<std::int32_t> codes1(n), codes(n);
  std::vector<float> best1(n), best(n);
  plaid::assign_grouped(x.data(), n, dim, c.data(), k, 2, codes1.data(), best1.data(), 1);
  for (int threads : {2, 3}) {
    plaid::assign_grouped(x.data(), n, dim, c.data(), k, 2, codes.data(), best.data(), threads);
    EXPECT_EQ(codes, codes1);
    EXPECT_EQ(best, best1);
  }
}

TEST(PlaidAssignGrouped, RejectsBadInput) {
  const auto x = uniform(4 * 8, 27), c = uniform(9 * 8, 28);
  std::vector<std::int32_t> codes(4);
  EXPECT_THROW(plaid::assign_grouped(x.data(), 4, 8, c.data(), 9, 0, codes.data(), nullptr), std::invalid_argument);
  auto nan_x = x;
  nan_x[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(plaid::assign_grouped(nan_x.data(), 4, 8, c.data(), 9, 2, codes.data(), nullptr), std::invalid_argument);
  EXPECT_THROW(plaid::assign_grouped(x.data(), 4, 8, c.data(), 0, 2, codes.data(), nullptr), std::invalid_argument);
}

// A codebook whose cutoffs split [-0.1, 0.1] evenly and whose weights are the bucket midpoints:
// the quantiles of the uniform residuals the tests draw.
struct TestCodebook {
  std::vector<float> centroids, cutoffs, weights;
  plaid::Codebook cb;
  TestCodebook(std::int64_t k, std::int64_t dim, int nbits, bool normalize, std::uint32_t seed = 7) {
    centroids = uniform(k * dim, seed);
    const int buckets = 1 << nbits;
    const float width = 0.2f / buckets;
    for (int b = 1; b < buckets; ++b) cutoffs.push_back(-0.1f + b * width);
    for (int b = 0; b < buckets; ++b) weights.push_back(-0.1f + (b + 0.5f) * width);
    cb = {centroids.data(), k, dim, nbits, cutoffs.data(), weights.data(), normalize};
  }
};

unsigned bucket_at(const std::uint8_t* row, std::int64_t j, int nbits) {
  return (row[j * nbits / 8] >> (j * nbits % 8)) & ((1u << nbits) - 1);
}

class Codec : public ::testing::TestWithParam<Isa> {};

TEST_P(Codec, RoundTripDecodesBucketWeightsWithinHalfABucket) {
  const IsaScope scope(GetParam());
  const std::int64_t k = 9, n = 200;
  // dim 40 fills whole 8-dimension SIMD steps; 40 + 8 / nbits leaves a tail (with 1 bit, rows
  // are whole bytes only at multiples of 8, so 48 has none)
  for (auto [nbits, dim] : std::vector<std::pair<int, std::int64_t>>{
           {1, 40}, {2, 40}, {4, 40}, {8, 40}, {1, 48}, {2, 44}, {4, 42}, {8, 41}}) {
    TestCodebook t(k, dim, nbits, false);
    t.centroids[5] = 0.0f;  // so that x[5] - centroid is exactly a cutoff below
    std::vector<std::uint16_t> codes(n);
    std::vector<float> x(n * dim);
    const auto noise = uniform(n * dim, 11, -0.1f, 0.1f);
    for (std::int64_t r = 0; r < n; ++r) {
      codes[r] = static_cast<std::uint16_t>(r % k);
      for (std::int64_t j = 0; j < dim; ++j) x[r * dim + j] = t.centroids[codes[r] * dim + j] + noise[r * dim + j];
    }
    x[5] = t.cutoffs[0];  // exactly on a cutoff: the upper bucket
    const std::int64_t bytes = plaid::packed_bytes(dim, nbits);
    std::vector<std::uint8_t> packed(n * bytes);
    plaid::compress(t.cb, x.data(), codes.data(), n, packed.data(), 2);
    std::vector<float> out(n * dim);
    plaid::decompress(t.cb, codes.data(), packed.data(), n, out.data(), 2);
    const float half = 0.1f / (1 << nbits) + 1e-6f;
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t j = 0; j < dim; ++j) {
        const float c = t.centroids[codes[r] * dim + j], residual = x[r * dim + j] - c;
        const unsigned expected = static_cast<unsigned>(
            std::count_if(t.cutoffs.begin(), t.cutoffs.end(), [&](float cut) { return cut <= residual; }));
        const unsigned bucket = bucket_at(&packed[r * bytes], j, nbits);
        ASSERT_EQ(bucket, expected) << "nbits " << nbits << " row " << r << " dim " << j;
        ASSERT_EQ(out[r * dim + j], c + t.weights[bucket]);
        ASSERT_LE(std::fabs(out[r * dim + j] - x[r * dim + j]), half) << "nbits " << nbits;
      }
    EXPECT_EQ(bucket_at(&packed[0], 5, nbits), 1u);
  }
}

TEST_P(Codec, NormalizeGivesUnitRowsAndKeepsZeroRows) {
  const IsaScope scope(GetParam());
  TestCodebook t(3, 16, 2, true);
  std::fill(t.centroids.begin(), t.centroids.begin() + 16, 0.0f);
  const std::vector<float> zero_weights(4, 0.0f);
  plaid::Codebook cb = t.cb;
  cb.weights = zero_weights.data();
  const std::vector<std::uint16_t> codes = {0, 1, 2};
  const std::vector<std::uint8_t> packed(3 * 4, 0x1B);
  std::vector<float> out(3 * 16);
  plaid::decompress(cb, codes.data(), packed.data(), 3, out.data());
  for (int j = 0; j < 16; ++j) EXPECT_EQ(out[j], 0.0f);
  for (int r = 1; r < 3; ++r) {
    double norm = 0;
    for (int j = 0; j < 16; ++j) norm += double(out[r * 16 + j]) * out[r * 16 + j];
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
}

class Residuals : public ::testing::TestWithParam<Isa> {};

TEST_P(Residuals, EveryKernelGivesTheScalarBitsAndNearlyTheDecodedRowsScores) {
  // plaid_residual.hpp: the same bits as the scalar kernel, and the float32 MaxSim of the
  // decompressed rows within the int8 approximation of the residual part and the norm.
  const kernels::ResidualFn kernel = [] {
    const IsaScope scope(GetParam());
    return colmax::active_residual_scorer();
  }();
  const std::vector<std::int64_t> lengths = {1, 5, 11, 0, 23, 40, 9};
  std::vector<std::int64_t> offsets = {0};
  for (std::int64_t n : lengths) offsets.push_back(offsets.back() + n);
  const std::int64_t rows = offsets.back(), k = 7;
  for (auto [nbits, dim] :
       std::vector<std::pair<int, std::int64_t>>{{1, 40}, {2, 44}, {4, 42}, {8, 41}, {2, 128}, {4, 384}, {4, 130}}) {
    // 20 query tokens: one block of AVX-512 lanes, two of AVX2's; 70: several, the last one short
    for (auto [normalize, nq] : std::vector<std::pair<bool, std::int64_t>>{{true, 20}, {false, 20}, {true, 70}}) {
      const TestCodebook t(k, dim, nbits, normalize);
      std::vector<std::uint16_t> codes(rows);
      for (std::int64_t r = 0; r < rows; ++r) codes[r] = static_cast<std::uint16_t>((r * 5 + r / 3) % k);
      for (std::size_t d = 0; d + 1 < offsets.size(); ++d) std::sort(&codes[offsets[d]], &codes[offsets[d + 1]]);
      const std::int64_t bytes = plaid::packed_bytes(dim, nbits);
      std::vector<std::uint8_t> packed(rows * bytes);
      for (std::size_t i = 0; i < packed.size(); ++i) packed[i] = static_cast<std::uint8_t>(i * 97 + 13);
      const std::vector<float> q = uniform(nq * dim, 17);
      const colmax::QueryMatrix query{q.data(), nq, dim};
      const std::int64_t nq_pad = (nq + 15) / 16 * 16;
      colmax::AlignedBuffer<float> table;  // the kernels' loads are aligned
      table.assign_zero(k * nq_pad);
      kernels::plaid_scalar.centroid_scores(query, t.centroids.data(), k, nq_pad, table.data());
      const kernels::ResidualTables tables(t.centroids.data(), k, dim, nbits, t.weights.data(), normalize, table.data(),
                                           nq_pad);
      std::vector<const std::uint8_t*> starts;
      for (std::size_t d = 0; d + 1 < offsets.size(); ++d) starts.push_back(&packed[offsets[d] * bytes]);
      const std::int64_t n_docs = static_cast<std::int64_t>(lengths.size());
      std::vector<float> want(n_docs), got(n_docs);
      kernels::score_residuals_scalar(
          {&tables.book, &query, codes.data(), starts.data(), offsets.data(), n_docs, want.data()});
      kernel({&tables.book, &query, codes.data(), starts.data(), offsets.data(), n_docs, got.data()});
      EXPECT_EQ(got, want) << colmax::isa_name(GetParam()) << " nbits " << nbits << " dim " << dim << " nq " << nq;

      std::vector<float> decoded(rows * dim), exact(n_docs);
      plaid::decompress(t.cb, codes.data(), packed.data(), rows, decoded.data(), 1);
      const colmax::DocMatrix docs{decoded.data(), colmax::DType::f32, rows, dim, offsets.data(), n_docs};
      colmax::maxsim(query, docs, colmax::DocSelection::everything(), exact.data(), 1);
      for (std::int64_t d = 0; d < n_docs; ++d) {
        if (lengths[d] == 0) {
          EXPECT_EQ(got[d], -std::numeric_limits<float>::infinity());
          continue;
        }
        EXPECT_NEAR(got[d], exact[d], 0.02 * nq * (normalize ? 1.0 : std::sqrt(double(dim)) / 4))
            << "nbits " << nbits << " dim " << dim << " doc " << d;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Plaid, Residuals, ::testing::ValuesIn(all_supported()),
                         [](const auto& info) { return std::string(colmax::isa_name(info.param)); });

INSTANTIATE_TEST_SUITE_P(Plaid, Codec, ::testing::ValuesIn(all_supported()),
                         [](const auto& info) { return std::string(colmax::isa_name(info.param)); });

TEST(PlaidCodec, RejectsBadInput) {
  EXPECT_THROW(plaid::packed_bytes(10, 3), std::invalid_argument);
  EXPECT_THROW(plaid::packed_bytes(7, 2), std::invalid_argument);
  EXPECT_THROW(plaid::packed_bytes(0, 8), std::invalid_argument);
  EXPECT_EQ(plaid::packed_bytes(130, 4), 65);
  const TestCodebook t(4, 8, 2, false);
  plaid::Codebook cb = t.cb;
  cb.n_centroids = 0;
  EXPECT_THROW(plaid::validate(cb), std::invalid_argument);
  cb = t.cb;
  cb.n_centroids = 65537;
  EXPECT_THROW(plaid::validate(cb), std::invalid_argument);
  const float unsorted[] = {0.1f, -0.1f, 0.2f}, nan_cut[] = {0.0f, std::nanf(""), 1.0f};
  cb = t.cb;
  cb.cutoffs = unsorted;
  EXPECT_THROW(plaid::validate(cb), std::invalid_argument);
  cb.cutoffs = nan_cut;
  EXPECT_THROW(plaid::validate(cb), std::invalid_argument);
  const float inf_weights[] = {0.0f, 1.0f, INFINITY, 2.0f};
  cb = t.cb;
  cb.weights = inf_weights;
  EXPECT_THROW(plaid::validate(cb), std::invalid_argument);
  cb = t.cb;
  cb.centroids = nullptr;
  EXPECT_THROW(plaid::validate(cb), std::invalid_argument);

  const auto x = uniform(2 * 8, 1);
  const std::uint16_t bad_codes[] = {0, 4};
  std::vector<std::uint8_t> packed(4);
  std::vector<float> out(16);
  EXPECT_THROW(plaid::compress(t.cb, x.data(), bad_codes, 2, packed.data()), std::invalid_argument);
  EXPECT_THROW(plaid::decompress(t.cb, bad_codes, packed.data(), 2, out.data()), std::invalid_argument);
  cb = t.cb;
  cb.cutoffs = nullptr;
  const std::uint16_t codes[] = {0, 1};
  EXPECT_THROW(plaid::compress(cb, x.data(), codes, 2, packed.data()), std::invalid_argument);
  cb = t.cb;
  cb.weights = nullptr;
  EXPECT_THROW(plaid::decompress(cb, codes, packed.data(), 2, out.data()), std::invalid_argument);
  std::vector<float> nan_x = x;
  nan_x[3] = std::nanf("");
  EXPECT_THROW(plaid::compress(t.cb, nan_x.data(), codes, 2, packed.data()), std::invalid_argument);

  std::vector<std::int32_t> assigned(2);
  EXPECT_THROW(plaid::assign(nan_x.data(), 2, 8, t.centroids.data(), 4, assigned.data(), nullptr),
               std::invalid_argument);
  EXPECT_THROW(plaid::assign(x.data(), 2, 8, t.centroids.data(), 0, assigned.data(), nullptr), std::invalid_argument);
  EXPECT_THROW(plaid::assign(x.data(), 2, 0, t.centroids.data(), 4, assigned.data(), nullptr), std::invalid_argument);
}

TEST(PlaidDocCodes, SortTokensByCodeAndRoundTrip) {
  const std::vector<std::int64_t> offsets = {0, 3, 3, 8, 9, 15, 60};
  std::mt19937 rng(5);
  std::vector<std::uint16_t> codes(60);
  for (auto& c : codes) c = static_cast<std::uint16_t>(rng() % 9);
  const plaid::EncodedDocCodes enc = plaid::encode_doc_codes(codes.data(), offsets.data(), 6, 9);
  ASSERT_EQ(enc.order.size(), 60u);
  ASSERT_EQ(enc.offsets.size(), 7u);
  EXPECT_EQ(enc.offsets.back(), static_cast<std::int64_t>(enc.bytes.size()));
  std::vector<std::int64_t> all(6);
  for (int d = 0; d < 6; ++d) all[d] = d;
  std::vector<std::uint16_t> stored(60);
  const plaid::DocCodes view{enc.bytes.data(), static_cast<std::int64_t>(enc.bytes.size()), enc.offsets.data()};
  plaid::token_codes(view, offsets.data(), 6, 9, all.data(), 6, stored.data());
  for (int d = 0; d < 6; ++d) {
    std::vector<std::int64_t> want(offsets[d + 1] - offsets[d]);
    for (std::size_t t = 0; t < want.size(); ++t) want[t] = offsets[d] + static_cast<std::int64_t>(t);
    std::stable_sort(want.begin(), want.end(), [&](auto a, auto b) { return codes[a] < codes[b]; });
    for (std::size_t t = 0; t < want.size(); ++t) {
      EXPECT_EQ(enc.order[offsets[d] + t], want[t]) << "document " << d;
      EXPECT_EQ(stored[offsets[d] + t], codes[want[t]]) << "document " << d;
    }
  }
  const std::uint16_t bad[] = {0, 9};
  const std::int64_t two[] = {0, 2};
  EXPECT_THROW(plaid::encode_doc_codes(bad, two, 1, 9), std::invalid_argument);
  const std::int64_t decreasing[] = {0, 2, 1};
  EXPECT_THROW(plaid::encode_doc_codes(codes.data(), decreasing, 2, 9), std::invalid_argument);
  EXPECT_THROW(plaid::encode_doc_codes(codes.data(), two, 1, 0), std::invalid_argument);
  const std::int64_t out_of_range[] = {6};
  EXPECT_THROW(plaid::token_codes(view, offsets.data(), 6, 9, out_of_range, 1, stored.data()), std::invalid_argument);
  // read against the wrong token counts or codebook size, the blobs do not fit
  EXPECT_THROW(plaid::token_codes(view, offsets.data(), 6, 9000, all.data(), 6, stored.data()), std::invalid_argument);
  std::vector<std::int64_t> shifted = offsets;
  shifted[5] += 3;  // document 4: 9 tokens, whose run bitmap needs 2 bytes, not 1
  EXPECT_THROW(plaid::token_codes(view, shifted.data(), 6, 9, all.data(), 6, stored.data()), std::invalid_argument);
}

TEST(PlaidIvf, MatchesNaiveMap) {
  const std::vector<std::int64_t> offsets = {0, 3, 3, 8, 9, 15};
  std::mt19937 rng(3);
  std::vector<std::uint16_t> codes(15);
  for (auto& c : codes) c = static_cast<std::uint16_t>(rng() % 6);
  const plaid::EncodedDocCodes enc = plaid::encode_doc_codes(codes.data(), offsets.data(), 5, 7);
  const plaid::DocCodes view{enc.bytes.data(), static_cast<std::int64_t>(enc.bytes.size()), enc.offsets.data()};
  const plaid::Ivf ivf = plaid::build_ivf(view, offsets.data(), 5, 7);
  std::map<int, std::set<std::uint32_t>> naive;
  for (int d = 0; d < 5; ++d)
    for (std::int64_t t = offsets[d]; t < offsets[d + 1]; ++t) naive[codes[t]].insert(d);
  ASSERT_EQ(ivf.offsets.size(), 8u);
  EXPECT_EQ(ivf.offsets[0], 0);
  const std::vector<std::int64_t> starts = plaid::ivf_list_starts(ivf.offsets.data(), 7, 5);
  EXPECT_EQ(starts.back(), static_cast<std::int64_t>(ivf.bytes.size()));
  for (int c = 0; c < 7; ++c) {
    std::vector<std::uint32_t> got(ivf.offsets[c + 1] - ivf.offsets[c]);
    ASSERT_TRUE(colmax::ef::decode(ivf.bytes.data() + starts[c], static_cast<std::int64_t>(got.size()), 5, got.data()));
    const std::vector<std::uint32_t> want(naive[c].begin(), naive[c].end());
    EXPECT_EQ(got, want) << "centroid " << c;
  }
  EXPECT_THROW(plaid::build_ivf(view, offsets.data(), 5, 0), std::invalid_argument);
  const std::int64_t decreasing[] = {0, 2, 1};
  EXPECT_THROW(plaid::build_ivf(view, decreasing, 2, 7), std::invalid_argument);
  std::vector<std::int64_t> bad_offsets = ivf.offsets;
  bad_offsets[3] = bad_offsets[4] + 1;
  EXPECT_THROW(plaid::ivf_list_starts(bad_offsets.data(), 7, 5), std::invalid_argument);
  bad_offsets = ivf.offsets;
  bad_offsets[0] = 1;
  EXPECT_THROW(plaid::ivf_list_starts(bad_offsets.data(), 7, 5), std::invalid_argument);
}

// A compressed corpus: vectors near their centroids, codes from assign, residuals, the ivf and
// the decompressed vectors that exhaustive search must score (float32), and staged search too
// (quantized to int8). Built under the ISA being tested: the decoder is that ISA's.
struct Corpus {
  static constexpr std::int64_t dim = 32, k = 16;
  TestCodebook book{k, dim, 2, true, 21};
  std::vector<std::int64_t> offsets{0};
  std::vector<float> x, decoded;
  std::vector<std::uint16_t> codes;  // per token, in stored order
  std::vector<std::uint8_t> residuals;
  plaid::EncodedDocCodes doc_codes;
  plaid::Ivf ivf;
  std::int64_t n_docs;

  explicit Corpus(std::int64_t docs) : n_docs(docs) {
    for (std::int64_t d = 0; d < docs; ++d) offsets.push_back(offsets.back() + (d == 7 ? 0 : 1 + (d * 7) % 13));
    const std::int64_t n = offsets.back();
    x = uniform(n * dim, 31);
    std::vector<std::int32_t> assigned(n);
    plaid::assign(x.data(), n, dim, book.centroids.data(), k, assigned.data(), nullptr);
    codes.assign(assigned.begin(), assigned.end());
    doc_codes = plaid::encode_doc_codes(codes.data(), offsets.data(), docs, k);
    const std::vector<float> input = x;
    const std::vector<std::uint16_t> input_codes = codes;
    for (std::int64_t t = 0; t < n; ++t) {  // tokens in stored order
      codes[t] = input_codes[doc_codes.order[t]];
      std::copy_n(&input[doc_codes.order[t] * dim], dim, &x[t * dim]);
    }
    for (std::int64_t t = 0; t < n; ++t)  // keep residuals inside the quantizer's range
      for (std::int64_t j = 0; j < dim; ++j)
        x[t * dim + j] = book.centroids[codes[t] * dim + j] + 0.1f * x[t * dim + j];
    residuals.resize(n * plaid::packed_bytes(dim, 2));
    plaid::compress(book.cb, x.data(), codes.data(), n, residuals.data());
    decoded.resize(n * dim);
    plaid::decompress(book.cb, codes.data(), residuals.data(), n, decoded.data());
    ivf = plaid::build_ivf(view(), offsets.data(), docs, k);
  }

  plaid::DocCodes view() const {
    return {doc_codes.bytes.data(), static_cast<std::int64_t>(doc_codes.bytes.size()), doc_codes.offsets.data()};
  }
  plaid::Segment segment() const {
    return {view(),
            residuals.data(),
            offsets.data(),
            n_docs,
            ivf.offsets.data(),
            ivf.bytes.data(),
            static_cast<std::int64_t>(ivf.bytes.size()),
            colmax::DocSelection::everything(),
            nullptr,
            0};
  }
  colmax::DocMatrix matrix(const std::vector<float>& v) const {
    return {v.data(), colmax::DType::f32, offsets.back(), dim, offsets.data(), n_docs};
  }
  // What staged search scores every document: the residual kernel's scores (scalar, the same bits
  // as every ISA's) over stage (a)'s table from the active ISA's kernel.
  std::vector<float> staged(const colmax::QueryMatrix& q) const {
    const std::int64_t nq_pad = (q.n_tokens + 15) / 16 * 16;
    colmax::AlignedBuffer<float> table;  // the kernels' loads and stores are aligned
    table.assign_zero(k * nq_pad);
    colmax::active_plaid_kernels().centroid_scores(q, book.centroids.data(), k, nq_pad, table.data());
    const kernels::ResidualTables tables(book.centroids.data(), k, dim, 2, book.weights.data(), true, table.data(),
                                         nq_pad);
    std::vector<const std::uint8_t*> rows;
    for (std::int64_t d = 0; d < n_docs; ++d) rows.push_back(&residuals[offsets[d] * plaid::packed_bytes(dim, 2)]);
    std::vector<float> out(n_docs);
    kernels::score_residuals_scalar({&tables.book, &q, codes.data(), rows.data(), offsets.data(), n_docs, out.data()});
    return out;
  }
};

// Exhaustive searches decompress, as colmax's exact searches ask; staged ones score from the residuals.
plaid::SearchParams params(std::int64_t k, std::int64_t nprobe, std::int64_t ncandidates, bool exhaustive = false) {
  return {k, nprobe, ncandidates, exhaustive, exhaustive};
}

void expect_same(const colmax::TopK& a, const colmax::TopK& b, const std::string& what) {
  EXPECT_EQ(a.ids, b.ids) << what;
  EXPECT_EQ(a.scores, b.scores) << what;
}

// The best k of `scores` among the selected documents: score descending, ties to the lower id.
colmax::TopK top_of(const std::vector<float>& scores, std::int64_t k, const colmax::DocSelection& sel) {
  std::vector<std::int64_t> ids;
  for (std::int64_t d = 0; d < static_cast<std::int64_t>(scores.size()); ++d)
    if (sel.all || std::find(sel.ids, sel.ids + sel.count, d) != sel.ids + sel.count) ids.push_back(d);
  std::stable_sort(ids.begin(), ids.end(), [&](std::int64_t a, std::int64_t b) { return scores[a] > scores[b]; });
  colmax::TopK top;
  for (std::int64_t r = 0; r < std::min<std::int64_t>(k, static_cast<std::int64_t>(ids.size())); ++r) {
    top.ids.push_back(ids[r]);
    top.scores.push_back(scores[ids[r]]);
  }
  return top;
}

class Search : public ::testing::TestWithParam<Isa> {};

TEST_P(Search, ExhaustiveIsBruteForceAndFullProbingIsExhaustive) {
  const IsaScope scope(GetParam());
  const Corpus c(60);
  const auto q = uniform(5 * Corpus::dim, 41);
  const colmax::QueryMatrix query{q.data(), 5, Corpus::dim};
  const plaid::Segment seg = c.segment();
  const colmax::TopK brute = colmax::maxsim_topk(query, c.matrix(c.decoded), 12, colmax::DocSelection::everything(), 1);
  const colmax::TopK brute8 = top_of(c.staged(query), 12, colmax::DocSelection::everything());
  expect_same(plaid::search(query, c.book.cb, &seg, 1, params(12, 1, 1, true), 1), brute, "exhaustive");
  expect_same(plaid::search(query, c.book.cb, &seg, 1, params(12, Corpus::k, 60), 1), brute8, "full probe");
  expect_same(plaid::search(query, c.book.cb, &seg, 1, params(12, 1000, 1000), 2), brute8, "clipped nprobe");
  plaid::SearchParams residual = params(12, 1, 1, true);
  residual.decompress = false;
  expect_same(plaid::search(query, c.book.cb, &seg, 1, residual, 2), brute8, "exhaustive from the residuals");
  plaid::SearchParams decoded = params(12, Corpus::k, 60);
  decoded.decompress = true;
  expect_same(plaid::search(query, c.book.cb, &seg, 1, decoded, 1), brute, "full probe, decompressed");

  // With `exact` the final scores come from the uncompressed vectors.
  const colmax::DocMatrix exact = c.matrix(c.x);
  plaid::Segment with_exact = seg;
  with_exact.exact = &exact;
  expect_same(plaid::search(query, c.book.cb, &with_exact, 1, params(12, Corpus::k, 60), 2),
              colmax::maxsim_topk(query, exact, 12, colmax::DocSelection::everything(), 1), "exact");
}

TEST_P(Search, AllowedSubsetsAndSegmentsMerge) {
  const IsaScope scope(GetParam());
  const Corpus c(60);
  const auto q = uniform(3 * Corpus::dim, 43);
  const colmax::QueryMatrix query{q.data(), 3, Corpus::dim};
  std::vector<std::int64_t> even;
  for (std::int64_t d = 0; d < 60; d += 2) even.push_back(d);
  plaid::Segment seg = c.segment();
  seg.allowed = colmax::DocSelection::subset(even.data(), static_cast<std::int64_t>(even.size()));
  for (bool exhaustive : {true, false}) {
    const colmax::TopK brute = exhaustive ? colmax::maxsim_topk(query, c.matrix(c.decoded), 60, seg.allowed, 1)
                                          : top_of(c.staged(query), 60, seg.allowed);
    const colmax::TopK got = plaid::search(query, c.book.cb, &seg, 1, params(60, Corpus::k, 60, exhaustive), 2);
    expect_same(got, brute, exhaustive ? "allowed, exhaustive" : "allowed, staged");
  }

  // The same documents split in two segments, positions offset by first_pos: same ranking.
  const Corpus a(25), b(35);
  std::vector<float> all_decoded(a.decoded);
  all_decoded.insert(all_decoded.end(), b.decoded.begin(), b.decoded.end());
  std::vector<std::int64_t> all_offsets(a.offsets);
  for (std::size_t i = 1; i < b.offsets.size(); ++i) all_offsets.push_back(a.offsets.back() + b.offsets[i]);
  std::vector<float> all_staged = a.staged(query);
  for (float v : b.staged(query)) all_staged.push_back(v);
  const colmax::DocMatrix merged{all_decoded.data(), colmax::DType::f32, all_offsets.back(),
                                 Corpus::dim,        all_offsets.data(), 60};
  plaid::Segment segs[] = {a.segment(), b.segment()};
  segs[1].first_pos = 25;
  const auto all = colmax::DocSelection::everything();
  expect_same(plaid::search(query, a.book.cb, segs, 2, params(9, 1, 1, true), 1),
              colmax::maxsim_topk(query, merged, 9, all, 1), "segments, exhaustive");
  expect_same(plaid::search(query, a.book.cb, segs, 2, params(9, Corpus::k, 100), 2), top_of(all_staged, 9, all),
              "segments, staged");
}

TEST_P(Search, PruningKeepsTheBestApproximateScores) {
  const IsaScope scope(GetParam());
  const Corpus c(80);
  const std::int64_t nq = 4, dim = Corpus::dim;
  const auto q = uniform(nq * dim, 47);
  const colmax::QueryMatrix query{q.data(), nq, dim};
  // Reference: probe with nprobe 2 per token, approximate score from centroid scores, keep a quarter.
  std::vector<double> s(Corpus::k * nq);
  for (std::int64_t cid = 0; cid < Corpus::k; ++cid)
    for (std::int64_t i = 0; i < nq; ++i) s[cid * nq + i] = dot(&q[i * dim], &c.book.centroids[cid * dim], dim);
  std::set<std::int64_t> probed;
  for (std::int64_t i = 0; i < nq; ++i) {
    std::vector<std::int64_t> order(Corpus::k);
    for (std::int64_t j = 0; j < Corpus::k; ++j) order[j] = j;
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return s[a * nq + i] > s[b * nq + i]; });
    probed.insert(order[0]);
    probed.insert(order[1]);
  }
  std::vector<std::pair<double, std::int64_t>> approx;
  for (std::int64_t d = 0; d < c.n_docs; ++d) {
    bool hit = false;
    for (std::int64_t t = c.offsets[d]; t < c.offsets[d + 1]; ++t) hit = hit || probed.count(c.codes[t]);
    if (!hit) continue;
    double score = 0;
    for (std::int64_t i = 0; i < nq; ++i) {
      double m = -1e300;
      for (std::int64_t t = c.offsets[d]; t < c.offsets[d + 1]; ++t) m = std::max(m, s[c.codes[t] * nq + i]);
      score += m;
    }
    approx.push_back({-score, d});
  }
  // A quarter of the candidates: stage (b)'s byte-score cut (4 * ncandidates) keeps them all, so
  // this checks stage (c) alone; both cuts together are checked against a NumPy model of every
  // stage in tests/test_plaid_core.py.
  const std::int64_t n_keep = (static_cast<std::int64_t>(approx.size()) + 3) / 4;
  ASSERT_GT(n_keep, 3);
  std::sort(approx.begin(), approx.end());
  std::vector<std::int64_t> kept;
  for (std::int64_t r = 0; r < n_keep; ++r) kept.push_back(approx[r].second);
  const colmax::TopK want = top_of(c.staged(query), 3, colmax::DocSelection::subset(kept.data(), n_keep));
  const plaid::Segment seg = c.segment();
  expect_same(plaid::search(query, c.book.cb, &seg, 1, params(3, 2, n_keep), 1), want, "pruned");
  // ncandidates below k is raised to k.
  EXPECT_EQ(plaid::search(query, c.book.cb, &seg, 1, params(5, 2, 1), 1).ids.size(), 5u);
}

INSTANTIATE_TEST_SUITE_P(Plaid, Search, ::testing::ValuesIn(all_supported()),
                         [](const auto& info) { return std::string(colmax::isa_name(info.param)); });

TEST(PlaidSearch, ThreadCountDoesNotChangeResults) {
  const Corpus c(400);
  const auto q = uniform(20 * Corpus::dim, 53);
  const colmax::QueryMatrix query{q.data(), 20, Corpus::dim};
  const plaid::Segment seg = c.segment();
  for (const plaid::SearchParams& p : {params(10, 2, 50), params(10, 3, 1000), params(30, 1, 1, true)}) {
    const colmax::TopK one = plaid::search(query, c.book.cb, &seg, 1, p, 1);
    for (int threads : {2, 3, 8}) expect_same(plaid::search(query, c.book.cb, &seg, 1, p, threads), one, "threads");
  }
}

TEST(PlaidSearch, CompletedDocumentsAreScoredAsAnExhaustiveSearchScoresThem) {
  const Corpus c(120);
  const auto q = uniform(6 * Corpus::dim, 59);
  const colmax::QueryMatrix query{q.data(), 6, Corpus::dim};
  const plaid::Segment seg = c.segment();
  std::vector<std::int64_t> listed = {0, 5, 17, 64, 119};
  int calls = 0;
  std::vector<std::vector<std::int64_t>> shown;
  const plaid::CompleteFn complete = [&](const std::vector<std::vector<std::int64_t>>& candidates) {
    ++calls;
    shown = candidates;
    return std::vector<colmax::DocSelection>{colmax::DocSelection::subset(listed.data(), 5)};
  };
  std::vector<float> completed;
  const colmax::TopK got = plaid::search(query, c.book.cb, &seg, 1, params(8, 2, 20), 2, nullptr, complete, &completed);
  EXPECT_EQ(calls, 1);
  expect_same(got, plaid::search(query, c.book.cb, &seg, 1, params(8, 2, 20), 1), "ranking unchanged");
  // shown the 20 candidates stage (d) scores, ascending: the ranking's documents among them
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].size(), 20u);
  EXPECT_TRUE(std::is_sorted(shown[0].begin(), shown[0].end()));
  for (std::int64_t id : got.ids) EXPECT_TRUE(std::binary_search(shown[0].begin(), shown[0].end(), id)) << id;
  plaid::Segment alone = seg;
  alone.allowed = colmax::DocSelection::subset(listed.data(), 5);
  plaid::SearchParams residual = params(5, 1, 1, true);
  residual.decompress = false;
  const colmax::TopK each = plaid::search(query, c.book.cb, &alone, 1, residual, 1);
  ASSERT_EQ(completed.size(), 5u);
  for (std::size_t r = 0; r < each.ids.size(); ++r) {
    const auto at = std::find(listed.begin(), listed.end(), each.ids[r]) - listed.begin();
    EXPECT_EQ(completed[at], each.scores[r]) << "document " << each.ids[r];
  }
  std::vector<std::int64_t> unsorted = {3, 2};
  const plaid::CompleteFn bad = [&](const std::vector<std::vector<std::int64_t>>&) {
    return std::vector<colmax::DocSelection>{colmax::DocSelection::subset(unsorted.data(), 2)};
  };
  EXPECT_THROW(plaid::search(query, c.book.cb, &seg, 1, params(8, 2, 20), 1, nullptr, bad, &completed),
               std::invalid_argument);
}

TEST(PlaidSearch, EmptyCandidatesGiveAnEmptyResult) {
  const Corpus c(10);
  const auto q = uniform(2 * Corpus::dim, 3);
  const colmax::QueryMatrix query{q.data(), 2, Corpus::dim};
  plaid::Segment seg = c.segment();
  seg.allowed = colmax::DocSelection::subset(nullptr, 0);
  EXPECT_TRUE(plaid::search(query, c.book.cb, &seg, 1, params(5, 4, 5), 1).ids.empty());
  EXPECT_TRUE(plaid::search(query, c.book.cb, &seg, 0, params(5, 4, 5), 1).ids.empty());
}

TEST(PlaidSearch, RejectsBadInput) {
  const Corpus c(10);
  const auto q = uniform(2 * Corpus::dim, 3);
  const colmax::QueryMatrix query{q.data(), 2, Corpus::dim};
  const plaid::Segment seg = c.segment();
  const auto& cb = c.book.cb;
  auto throws = [&](const colmax::QueryMatrix& qm, const plaid::Codebook& book, const plaid::Segment& s,
                    const plaid::SearchParams& p) {
    EXPECT_THROW(plaid::search(qm, book, &s, 1, p, 1), std::invalid_argument);
  };
  throws(query, cb, seg, params(0, 1, 1));
  throws(query, cb, seg, params(1, 0, 1));
  throws(query, cb, seg, params(1, 1, 0));
  throws({q.data(), 0, Corpus::dim}, cb, seg, params(1, 1, 1));
  throws({q.data(), 2, Corpus::dim - 1}, cb, seg, params(1, 1, 1));
  std::vector<float> nan_q = q;
  nan_q[1] = std::nanf("");
  throws({nan_q.data(), 2, Corpus::dim}, cb, seg, params(1, 1, 1));
  plaid::Codebook no_weights = cb;
  no_weights.weights = nullptr;
  throws(query, no_weights, seg, params(1, 1, 1));

  plaid::Segment bad = seg;
  const std::int64_t unsorted[] = {3, 1}, out_of_range[] = {1, 10};
  bad.allowed = colmax::DocSelection::subset(unsorted, 2);
  throws(query, cb, bad, params(1, 1, 1));
  bad.allowed = colmax::DocSelection::subset(out_of_range, 2);
  throws(query, cb, bad, params(1, 1, 1, true));
  bad = seg;
  std::vector<std::int64_t> offsets = c.offsets;
  offsets[2] = offsets[3] + 1;
  bad.offsets = offsets.data();
  throws(query, cb, bad, params(1, 1, 1));
  bad = seg;
  std::vector<std::int64_t> ivf_offsets = c.ivf.offsets;
  ivf_offsets[0] = 1;
  bad.ivf_offsets = ivf_offsets.data();
  throws(query, cb, bad, params(1, 1, 1));
  bad = seg;
  const std::vector<std::uint8_t> ones(c.ivf.bytes.size(), 0xFF);  // more entries than a list holds
  bad.ivf = ones.data();
  throws(query, cb, bad, params(1, Corpus::k, 1));
  bad.ivf_bytes -= 1;
  throws(query, cb, bad, params(1, Corpus::k, 1));
  bad = seg;
  const std::vector<std::uint8_t> damaged(c.doc_codes.bytes.size(), 0xFF);
  bad.codes.bytes = damaged.data();
  throws(query, cb, bad, params(1, Corpus::k, 1, true));
  throws(query, cb, bad, params(1, Corpus::k, 1));
  bad = seg;
  bad.codes.n_bytes -= 1;
  throws(query, cb, bad, params(1, Corpus::k, 1, true));

  const std::vector<float> wrong_dim(c.x.size());
  const colmax::DocMatrix exact{wrong_dim.data(), colmax::DType::f32, c.offsets.back(),
                                Corpus::dim / 2,  c.offsets.data(),   c.n_docs};
  bad = seg;
  bad.exact = &exact;
  throws(query, cb, bad, params(1, 1, 1));
  const colmax::DocMatrix fewer{c.x.data(),  colmax::DType::f32, c.offsets[c.n_docs - 1],
                                Corpus::dim, c.offsets.data(),   c.n_docs - 1};
  bad.exact = &fewer;
  throws(query, cb, bad, params(1, 1, 1));
}

}  // namespace
