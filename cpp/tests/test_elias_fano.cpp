// Elias-Fano lists: round trips over sizes and universes (empty, full, one value, the 2^32
// limit), the size bound, the documented bit layout, and damaged input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "colmax/elias_fano.hpp"

namespace {

namespace ef = colmax::ef;

std::vector<std::uint32_t> random_list(std::int64_t count, std::int64_t universe, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::set<std::uint32_t> values;
  if (count * 2 > universe) {  // dense: drop values from the full range
    for (std::int64_t v = 0; v < universe; ++v) values.insert(static_cast<std::uint32_t>(v));
    while (static_cast<std::int64_t>(values.size()) > count) values.erase(static_cast<std::uint32_t>(rng() % universe));
  } else {
    while (static_cast<std::int64_t>(values.size()) < count)
      values.insert(static_cast<std::uint32_t>(rng() % universe));
  }
  return {values.begin(), values.end()};
}

TEST(EliasFano, RoundTripsAndStaysWithinTheBound) {
  const std::int64_t universes[] = {1, 2, 7, 64, 1000, 16384, 65536, 1000003, std::int64_t(1) << 32};
  std::uint32_t seed = 1;
  for (std::int64_t u : universes)
    for (std::int64_t n : {0L, 1L, 2L, 3L, 17L, 64L, 1000L, 4096L}) {
      if (n > u) continue;
      const std::vector<std::uint32_t> values = random_list(n, u, seed++);
      const std::int64_t bytes = ef::encoded_bytes(n, u);
      if (n > 0) {
        const double bound_bits = n * (2 + std::log2(static_cast<double>(u) / n));
        EXPECT_LE(bytes, static_cast<std::int64_t>(bound_bits / 8) + 2) << n << " of " << u;
      } else {
        EXPECT_EQ(bytes, 0);
      }
      std::vector<std::uint8_t> buf(static_cast<std::size_t>(bytes) + 1, 0xAB);  // a guard byte after
      ef::encode(values.data(), n, u, buf.data());
      EXPECT_EQ(buf.back(), 0xAB) << "wrote past the list";
      std::vector<std::uint32_t> out(static_cast<std::size_t>(n));
      ASSERT_TRUE(ef::decode(buf.data(), n, u, out.data())) << n << " of " << u;
      EXPECT_EQ(out, values) << n << " of " << u;
    }
  // the whole universe, and the largest values
  std::vector<std::uint32_t> all(300);
  for (std::uint32_t v = 0; v < 300; ++v) all[v] = v;
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(ef::encoded_bytes(300, 300)));
  ef::encode(all.data(), 300, 300, buf.data());
  std::vector<std::uint32_t> out(300);
  ASSERT_TRUE(ef::decode(buf.data(), 300, 300, out.data()));
  EXPECT_EQ(out, all);
  const std::uint32_t top[] = {0, 4294967294u, 4294967295u};
  buf.assign(static_cast<std::size_t>(ef::encoded_bytes(3, std::int64_t(1) << 32)), 0);
  ef::encode(top, 3, std::int64_t(1) << 32, buf.data());
  ASSERT_TRUE(ef::decode(buf.data(), 3, std::int64_t(1) << 32, out.data()));
  EXPECT_EQ(std::vector<std::uint32_t>(out.begin(), out.begin() + 3), std::vector<std::uint32_t>(top, top + 3));
}

TEST(EliasFano, FollowsTheDocumentedLayout) {
  // 4 values below 64: l = floor(log2(16)) = 4 low bits each (2 bytes), 4 + (63 >> 4) = 7 high bits.
  const std::uint32_t values[] = {3, 17, 18, 60};
  ASSERT_EQ(ef::encoded_bytes(4, 64), 3);
  std::uint8_t buf[3];
  ef::encode(values, 4, 64, buf);
  EXPECT_EQ(buf[0], 0x13);  // low halves 3, 1 (LSB-first nibbles)
  EXPECT_EQ(buf[1], 0xC2);  // low halves 2, 12
  // high halves 0, 1, 1, 3 plus their index: bits 0, 2, 3, 6
  EXPECT_EQ(buf[2], 0x4D);
}

TEST(EliasFano, RejectsBadListsAndDetectsDamage) {
  const std::uint32_t unsorted[] = {5, 3}, repeated[] = {3, 3}, beyond[] = {1, 10};
  std::vector<std::uint8_t> buf(16);
  EXPECT_THROW(ef::encode(unsorted, 2, 10, buf.data()), std::invalid_argument);
  EXPECT_THROW(ef::encode(repeated, 2, 10, buf.data()), std::invalid_argument);
  EXPECT_THROW(ef::encode(beyond, 2, 10, buf.data()), std::invalid_argument);
  EXPECT_THROW(ef::encoded_bytes(11, 10), std::invalid_argument);
  EXPECT_THROW(ef::encoded_bytes(1, 0), std::invalid_argument);
  EXPECT_THROW(ef::encoded_bytes(1, (std::int64_t(1) << 32) + 1), std::invalid_argument);

  const std::vector<std::uint32_t> values = random_list(50, 5000, 9);
  const std::int64_t bytes = ef::encoded_bytes(50, 5000);
  std::vector<std::uint8_t> good(static_cast<std::size_t>(bytes));
  ef::encode(values.data(), 50, 5000, good.data());
  std::vector<std::uint32_t> out(50);
  std::vector<std::uint8_t> bad(good.size(), 0xFF);  // too many high bits set
  EXPECT_FALSE(ef::decode(bad.data(), 50, 5000, out.data()));
  bad.assign(good.size(), 0);  // no high bits set
  EXPECT_FALSE(ef::decode(bad.data(), 50, 5000, out.data()));
  // any single flipped bit decodes to an ascending list below the universe, or is reported
  for (std::int64_t bit = 0; bit < bytes * 8; ++bit) {
    bad = good;
    bad[bit >> 3] ^= static_cast<std::uint8_t>(1u << (bit & 7));
    if (!ef::decode(bad.data(), 50, 5000, out.data())) continue;
    for (std::size_t i = 0; i < out.size(); ++i) {
      EXPECT_LT(out[i], 5000u);
      if (i > 0) EXPECT_LT(out[i - 1], out[i]);
    }
  }
}

}  // namespace
