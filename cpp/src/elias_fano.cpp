// Elias-Fano lists (colmax/elias_fano.hpp). Reads go through load64, which never reads past the
// list, so decoding a damaged list stays inside its bytes.
#include "colmax/elias_fano.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

namespace colmax::ef {
namespace {

struct Layout {
  int low_bits;
  std::int64_t low_bytes, high_bits, high_bytes;
};

Layout layout(std::int64_t count, std::int64_t universe) {
  if (universe < 1 || universe > (std::int64_t(1) << 32) || count < 0 || count > universe)
    throw std::invalid_argument("Elias-Fano list of " + std::to_string(count) + " values below " +
                                std::to_string(universe) + ": need 0 <= count <= universe <= 2^32");
  if (count == 0) return {0, 0, 0, 0};
  int l = 0;
  while ((universe / count) >> (l + 1)) ++l;
  const std::int64_t high_bits = count + ((universe - 1) >> l);
  return {l, (count * l + 7) / 8, high_bits, (high_bits + 7) / 8};
}

// The little-endian 64-bit word at p, of which only the first `avail` bytes exist (zeros beyond).
std::uint64_t load64(const std::uint8_t* p, std::int64_t avail) {
  std::uint64_t word = 0;
  if (avail >= 8) {
    std::memcpy(&word, p, 8);
  } else {
    for (std::int64_t i = 0; i < avail; ++i) word |= std::uint64_t(p[i]) << (8 * i);
  }
  return word;
}

}  // namespace

std::int64_t encoded_bytes(std::int64_t count, std::int64_t universe) {
  const Layout s = layout(count, universe);
  return s.low_bytes + s.high_bytes;
}

void encode(const std::uint32_t* values, std::int64_t count, std::int64_t universe, std::uint8_t* out) {
  const Layout s = layout(count, universe);
  std::memset(out, 0, static_cast<std::size_t>(s.low_bytes + s.high_bytes));
  std::uint8_t* high = out + s.low_bytes;
  const std::uint64_t mask = (std::uint64_t(1) << s.low_bits) - 1;
  for (std::int64_t i = 0; i < count; ++i) {
    const std::uint64_t v = values[i];
    if (v >= static_cast<std::uint64_t>(universe) || (i > 0 && v <= values[i - 1]))
      throw std::invalid_argument("Elias-Fano values must be strictly ascending and below " + std::to_string(universe) +
                                  " (entry " + std::to_string(i) + ")");
    const std::int64_t bit = i * s.low_bits;
    for (int b = 0; b < s.low_bits; ++b)
      if ((v & mask) >> b & 1) out[(bit + b) >> 3] |= static_cast<std::uint8_t>(1u << ((bit + b) & 7));
    const std::int64_t h = static_cast<std::int64_t>(v >> s.low_bits) + i;
    high[h >> 3] |= static_cast<std::uint8_t>(1u << (h & 7));
  }
}

bool decode(const std::uint8_t* in, std::int64_t count, std::int64_t universe, std::uint32_t* out) {
  const Layout s = layout(count, universe);
  const std::uint8_t* high = in + s.low_bytes;
  const std::uint64_t mask = (std::uint64_t(1) << s.low_bits) - 1;
  std::int64_t i = 0, previous = -1;
  for (std::int64_t byte = 0; byte < s.high_bytes; byte += 8) {
    for (std::uint64_t word = load64(high + byte, s.high_bytes - byte); word != 0; word &= word - 1) {
      const std::int64_t bit = byte * 8 + __builtin_ctzll(word);
      if (i == count || bit >= s.high_bits) return false;
      const std::int64_t at = i * s.low_bits;
      const std::uint64_t low = (load64(in + (at >> 3), s.low_bytes - (at >> 3)) >> (at & 7)) & mask;
      const std::int64_t v = (static_cast<std::int64_t>(bit - i) << s.low_bits) | static_cast<std::int64_t>(low);
      if (v >= universe || v <= previous) return false;
      out[i++] = static_cast<std::uint32_t>(v);
      previous = v;
    }
  }
  return i == count;
}

}  // namespace colmax::ef
