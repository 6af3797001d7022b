// Every compiled kernel against the scalar specification, over the shapes that stress tiling:
// dimensions around the vector widths, 1-token and long documents, empty documents, negative
// similarities, several queries at once, candidates, threads and top-k order.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "colmax/isa.hpp"
#include "colmax/maxsim.hpp"
#include "colmax/quantize.hpp"
#include "convert.hpp"
#include "parallel.hpp"

namespace {

using colmax::DType;
using colmax::Isa;

struct Corpus {
  std::vector<float> f32;
  std::vector<std::uint16_t> f16, bf16;  // the same values, rounded to each storage type
  std::vector<std::int8_t> i8;           // and quantized, with one scale per row
  std::vector<float> scales;
  std::vector<std::int64_t> offsets;
  std::int64_t dim;

  colmax::DocMatrix matrix(DType dtype) const {
    const void* data = dtype == DType::f32   ? static_cast<const void*>(f32.data())
                       : dtype == DType::f16 ? static_cast<const void*>(f16.data())
                       : dtype == DType::i8  ? static_cast<const void*>(i8.data())
                                             : static_cast<const void*>(bf16.data());
    return {data,
            dtype,
            offsets.back(),
            dim,
            offsets.data(),
            static_cast<std::int64_t>(offsets.size()) - 1,
            dtype == DType::i8 ? scales.data() : nullptr};
  }
};

std::uint16_t to_f16(float f) {  // round to nearest via the exact widening: search is fine for tests
  // Values are drawn in [-1, 1], far from f16 overflow and subnormals.
  const int e = static_cast<int>(std::floor(std::log2(std::max(std::fabs(f), 1e-30f))));
  const float step = std::ldexp(1.0f, std::max(e, -14) - 10);
  const float rounded = std::nearbyint(f / step) * step;
  std::uint32_t bits;
  std::memcpy(&bits, &rounded, 4);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  if (rounded == 0.0f) return static_cast<std::uint16_t>(sign);
  const int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127 + 15;
  if (exponent <= 0) return static_cast<std::uint16_t>(sign | ((bits & 0x7FFFFF) | 0x800000) >> (14 - exponent));
  return static_cast<std::uint16_t>(sign | (exponent << 10) | ((bits >> 13) & 0x3FF));
}

std::uint16_t to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

Corpus make_corpus(const std::vector<std::int64_t>& lengths, std::int64_t dim, std::uint32_t seed, float shift = 0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Corpus c;
  c.dim = dim;
  c.offsets.push_back(0);
  for (std::int64_t n : lengths) c.offsets.push_back(c.offsets.back() + n);
  const std::size_t total = static_cast<std::size_t>(c.offsets.back() * dim);
  for (std::size_t i = 0; i < total; ++i) {
    const float v = u(rng) + shift;
    c.f32.push_back(v);
    c.f16.push_back(to_f16(v));
    c.bf16.push_back(to_bf16(v));
  }
  c.i8.resize(total);
  c.scales.resize(static_cast<std::size_t>(c.offsets.back()));
  colmax::quantize_int8(c.f32.data(), c.offsets.back(), dim, c.i8.data(), c.scales.data(), 1);
  return c;
}

std::vector<float> make_query(std::int64_t n, std::int64_t dim, std::uint32_t seed, float shift = 0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(static_cast<std::size_t>(n * dim));
  for (float& v : q) v = u(rng) + shift;
  return q;
}

// Scores under `isa`, restoring the previously active ISA afterwards.
std::vector<float> scores_with(Isa isa, const colmax::QueryMatrix& q, const colmax::DocMatrix& d, int threads = 1) {
  const Isa before = colmax::active_isa();
  colmax::set_active_isa(isa);
  std::vector<float> out(static_cast<std::size_t>(d.n_docs));
  colmax::maxsim(q, d, colmax::DocSelection::everything(), out.data(), threads);
  colmax::set_active_isa(before);
  return out;
}

// Rounding differs between kernels only in summation order and fused multiply-adds, plus
// bfloat16 rounding of the query on the bf16 dot-product path. int8 kernels compute the
// specification's operations exactly: no tolerance.
float tolerance(Isa isa, DType dtype, std::int64_t dim, std::int64_t n_q) {
  if (dtype == DType::i8) return 0.0f;
  const float per_dot = (isa == Isa::avx512bf16 && dtype == DType::bf16) ? 8e-3f * std::sqrt(float(dim)) : 1e-5f * dim;
  return per_dot * n_q + 1e-4f;
}

struct Shape {
  std::int64_t dim, n_query;
};

class AllKernels : public ::testing::TestWithParam<std::tuple<Isa, DType, Shape>> {};

TEST_P(AllKernels, MatchScalarOnRaggedDocuments) {
  const auto [isa, dtype, shape] = GetParam();
  // Lengths: single tokens, one short of / exactly / one past the tile heights of every kernel
  // (6, 10, 16 and 32 rows), empty documents, long ones.
  const std::vector<std::int64_t> lengths = {1, 5, 9, 10, 11, 12, 13, 0, 16, 17, 31, 32, 33, 1, 300, 7, 0, 64};
  const Corpus c = make_corpus(lengths, shape.dim, 7 + static_cast<std::uint32_t>(shape.dim));
  const std::vector<float> qv = make_query(shape.n_query, shape.dim, 99);
  const colmax::QueryMatrix q{qv.data(), shape.n_query, shape.dim};
  const auto expected = scores_with(Isa::scalar, q, c.matrix(dtype));
  const auto actual = scores_with(isa, q, c.matrix(dtype));
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] == 0) {
      EXPECT_EQ(actual[i], -std::numeric_limits<float>::infinity()) << "empty document " << i;
    } else {
      EXPECT_NEAR(actual[i], expected[i], tolerance(isa, dtype, shape.dim, shape.n_query))
          << colmax::isa_name(isa) << " " << colmax::dtype_name(dtype) << " doc " << i;
    }
  }
}

TEST_P(AllKernels, ExactWhenEverySimilarityIsNegative) {
  const auto [isa, dtype, shape] = GetParam();
  // Documents all positive, query all negative: every dot product is negative, so a kernel that
  // treated padding or an initial zero as a candidate maximum would return 0 here.
  const Corpus c = make_corpus({1, 3, 13, 40}, shape.dim, 3, /*shift=*/2.0f);
  const std::vector<float> qv = make_query(shape.n_query, shape.dim, 5, /*shift=*/-2.0f);
  const colmax::QueryMatrix q{qv.data(), shape.n_query, shape.dim};
  const auto expected = scores_with(Isa::scalar, q, c.matrix(dtype));
  const auto actual = scores_with(isa, q, c.matrix(dtype));
  for (std::size_t i = 0; i < actual.size(); ++i) {
    EXPECT_LT(actual[i], 0.0f);
    EXPECT_NEAR(actual[i], expected[i], 4 * tolerance(isa, dtype, shape.dim, shape.n_query)) << "doc " << i;
  }
}

std::vector<Isa> testable_isas() {
  std::vector<Isa> out;
  for (Isa isa : colmax::supported_isas())
    if (isa != Isa::scalar) out.push_back(isa);
  if (out.empty()) out.push_back(Isa::scalar);  // a portable build still checks the plumbing
  return out;
}

INSTANTIATE_TEST_SUITE_P(Kernels, AllKernels,
                         ::testing::Combine(::testing::ValuesIn(testable_isas()),
                                            ::testing::Values(DType::f32, DType::f16, DType::bf16, DType::i8),
                                            ::testing::Values(Shape{1, 3}, Shape{7, 32}, Shape{64, 32}, Shape{96, 17},
                                                              Shape{128, 32}, Shape{130, 33}, Shape{384, 32},
                                                              Shape{128, 1}, Shape{128, 70})),
                         [](const auto& info) {
                           const Shape s = std::get<2>(info.param);
                           return std::string(colmax::isa_name(std::get<0>(info.param))) + "_" +
                                  colmax::dtype_name(std::get<1>(info.param)) + "_dim" + std::to_string(s.dim) + "_q" +
                                  std::to_string(s.n_query);
                         });

TEST(MaxSim, BatchEqualsSeparateCalls) {
  const Corpus c = make_corpus({3, 17, 0, 40, 1}, 64, 11);
  const std::vector<float> a = make_query(32, 64, 1), b = make_query(5, 64, 2), e = make_query(40, 64, 3);
  const colmax::QueryMatrix qs[] = {{a.data(), 32, 64}, {b.data(), 5, 64}, {e.data(), 40, 64}};
  std::vector<float> batch(3 * 5);
  colmax::maxsim_batch(qs, 3, c.matrix(DType::f32), colmax::DocSelection::everything(), batch.data(), 2);
  for (int qi = 0; qi < 3; ++qi) {
    std::vector<float> single(5);
    colmax::maxsim(qs[qi], c.matrix(DType::f32), colmax::DocSelection::everything(), single.data(), 1);
    for (int d = 0; d < 5; ++d) EXPECT_EQ(batch[qi * 5 + d], single[d]) << "query " << qi << " doc " << d;
  }
}

TEST(MaxSim, ThreadCountDoesNotChangeResults) {
  std::vector<std::int64_t> lengths;
  for (int i = 0; i < 3000; ++i) lengths.push_back(1 + (i * 37) % 90);
  const Corpus c = make_corpus(lengths, 48, 21);
  const std::vector<float> qv = make_query(32, 48, 4);
  const colmax::QueryMatrix q{qv.data(), 32, 48};
  const auto one = scores_with(colmax::active_isa(), q, c.matrix(DType::f32), 1);
  for (int threads : {2, 3, 8}) EXPECT_EQ(scores_with(colmax::active_isa(), q, c.matrix(DType::f32), threads), one);
}

TEST(MaxSim, CandidatesFollowTheirOrder) {
  const Corpus c = make_corpus({4, 9, 2, 30}, 16, 8);
  const std::vector<float> qv = make_query(8, 16, 6);
  const colmax::QueryMatrix q{qv.data(), 8, 16};
  std::vector<float> all(4), some(3);
  colmax::maxsim(q, c.matrix(DType::f32), colmax::DocSelection::everything(), all.data());
  const std::int64_t ids[] = {3, 0, 3};
  colmax::maxsim(q, c.matrix(DType::f32), colmax::DocSelection::subset(ids, 3), some.data());
  EXPECT_EQ(some, (std::vector<float>{all[3], all[0], all[3]}));
}

TEST(MaxSim, TopKSortsByScoreThenIndex) {
  // Identical documents tie; the lower index must win, and k is clipped to the selection.
  Corpus c = make_corpus({2, 2, 2, 2}, 8, 1);
  std::copy(c.f32.begin(), c.f32.begin() + 16, c.f32.begin() + 32);  // doc 2 := doc 0
  const std::vector<float> qv = make_query(4, 8, 2);
  const colmax::QueryMatrix q{qv.data(), 4, 8};
  std::vector<float> all(4);
  colmax::maxsim(q, c.matrix(DType::f32), colmax::DocSelection::everything(), all.data());
  const colmax::TopK top = colmax::maxsim_topk(q, c.matrix(DType::f32), 10, colmax::DocSelection::everything());
  ASSERT_EQ(top.ids.size(), 4u);
  for (std::size_t r = 1; r < top.ids.size(); ++r) {
    EXPECT_GE(top.scores[r - 1], top.scores[r]);
    if (top.scores[r - 1] == top.scores[r]) EXPECT_LT(top.ids[r - 1], top.ids[r]);
  }
  const std::int64_t ids[] = {2, 0};
  const colmax::TopK sub = colmax::maxsim_topk(q, c.matrix(DType::f32), 1, colmax::DocSelection::subset(ids, 2));
  EXPECT_EQ(sub.ids, (std::vector<std::int64_t>{0}));
}

TEST(MaxSim, RejectsBadInputWithInvalidArgument) {
  const Corpus c = make_corpus({2, 3}, 8, 1);
  const std::vector<float> qv = make_query(4, 8, 2);
  const colmax::QueryMatrix q{qv.data(), 4, 8};
  std::vector<float> out(2);
  const auto all = colmax::DocSelection::everything();
  EXPECT_THROW(colmax::maxsim({qv.data(), 0, 8}, c.matrix(DType::f32), all, out.data()), std::invalid_argument);
  EXPECT_THROW(colmax::maxsim({qv.data(), 4, 7}, c.matrix(DType::f32), all, out.data()), std::invalid_argument);
  colmax::DocMatrix bad = c.matrix(DType::f32);
  const std::int64_t decreasing[] = {0, 3, 2};
  bad.offsets = decreasing;
  EXPECT_THROW(colmax::maxsim(q, bad, all, out.data()), std::invalid_argument);
  const std::int64_t short_end[] = {0, 2, 4};
  bad.offsets = short_end;
  EXPECT_THROW(colmax::maxsim(q, bad, all, out.data()), std::invalid_argument);
  const std::int64_t out_of_range[] = {2};
  EXPECT_THROW(colmax::maxsim(q, c.matrix(DType::f32), colmax::DocSelection::subset(out_of_range, 1), out.data()),
               std::invalid_argument);
  const std::int64_t dup[] = {1, 1};
  EXPECT_THROW(colmax::maxsim_topk(q, c.matrix(DType::f32), 1, colmax::DocSelection::subset(dup, 2)),
               std::invalid_argument);
  EXPECT_THROW(colmax::maxsim_topk(q, c.matrix(DType::f32), 0, all), std::invalid_argument);
  std::vector<float> nan_query = qv;
  nan_query[5] = std::nanf("");
  EXPECT_THROW(colmax::maxsim({nan_query.data(), 4, 8}, c.matrix(DType::f32), all, out.data()), std::invalid_argument);
}

TEST(Quantize, EveryIsaMatchesQuantizeRowBitForBit) {
  // dims around the SIMD widths (tails), rows of very different scales, a zero row, exact ties
  for (std::int64_t dim : {1, 7, 16, 33, 130, 384}) {
    std::vector<float> x = make_query(9, dim, 5 + static_cast<std::uint32_t>(dim));
    for (std::int64_t k = 0; k < dim; ++k) {
      x[2 * dim + k] *= 1e-3f;
      x[3 * dim + k] = 0.0f;
      x[4 * dim + k] = static_cast<float>(k % 5) - 2.5f;  // 2.5 -> 127: halves at every step
    }
    x[4 * dim] = -2.5f;
    std::vector<std::int8_t> want(x.size());
    std::vector<float> want_scales(9);
    for (std::int64_t r = 0; r < 9; ++r)
      want_scales[r] = colmax::quantize_row(x.data() + r * dim, dim, colmax::kDocLevels, want.data() + r * dim);
    const Isa before = colmax::active_isa();
    for (Isa isa : colmax::supported_isas()) {
      colmax::set_active_isa(isa);
      std::vector<std::int8_t> got(x.size());
      std::vector<float> scales(9);
      colmax::quantize_int8(x.data(), 9, dim, got.data(), scales.data(), 2);
      EXPECT_EQ(got, want) << colmax::isa_name(isa) << " dim " << dim;
      EXPECT_EQ(scales, want_scales) << colmax::isa_name(isa) << " dim " << dim;
    }
    colmax::set_active_isa(before);
    EXPECT_EQ(want_scales[3], 0.0f);
  }
}

TEST(Parallel, DefaultThreadsShareTheCpusWithRunningCalls) {
  const int cpus = colmax::default_threads();
  EXPECT_EQ(colmax::resolve_threads(3), 3);  // an explicit count is kept
  {
    const colmax::BusyCall me;
    EXPECT_EQ(colmax::resolve_threads(0), cpus);  // alone: every CPU
    std::vector<std::unique_ptr<colmax::BusyCall>> others;
    for (int i = 0; i < cpus; ++i) others.push_back(std::make_unique<colmax::BusyCall>());
    EXPECT_EQ(colmax::resolve_threads(0), 1);  // every CPU taken: the caller alone
    EXPECT_EQ(colmax::resolve_threads(2), 2);
  }
  // a region's workers count as busy while it runs
  std::atomic<int> seen{cpus};
  colmax::parallel_for_chunks(8, 2, [&](std::int64_t) { seen = std::min(seen.load(), colmax::busy_threads().load()); });
  EXPECT_GE(seen.load(), 1);
  EXPECT_EQ(colmax::busy_threads().load(), 0);
}

TEST(Convert, HalfWideningMatchesKnownValues) {
  EXPECT_EQ(colmax::f16_to_float(0x3C00), 1.0f);
  EXPECT_EQ(colmax::f16_to_float(0xC000), -2.0f);
  EXPECT_EQ(colmax::f16_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(colmax::f16_to_float(0x7BFF), 65504.0f);
  EXPECT_TRUE(std::isinf(colmax::f16_to_float(0x7C00)));
  EXPECT_TRUE(std::isnan(colmax::f16_to_float(0x7E00)));
  EXPECT_EQ(colmax::bf16_to_float(0x3F80), 1.0f);
}

}  // namespace
