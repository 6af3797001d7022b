// Elias-Fano coding of strictly ascending lists of integers below a universe u: the inverted lists
// and each document's distinct centroids of a compressed index.
//
// A list of n values takes l = floor(log2(u / n)) low bits per value (0 when n >= u) and n + (u - 1)
// >> l high bits, i.e. at most 2 + log2(u / n) bits per value, in two byte-aligned parts:
//   low:  value i's low l bits at bits [i * l, i * l + l), LSB-first;
//   high: value i sets bit (v_i >> l) + i, LSB-first; every other bit is zero.
// An empty list takes no bytes.
#pragma once

#include <cstdint>

namespace colmax::ef {

// Bytes of a list of `count` values below `universe` (1 .. 2^32, count <= universe).
std::int64_t encoded_bytes(std::int64_t count, std::int64_t universe);

// Writes encoded_bytes(count, universe) bytes to out. Throws std::invalid_argument unless the
// values are strictly ascending and below universe.
void encode(const std::uint32_t* values, std::int64_t count, std::int64_t universe, std::uint8_t* out);

// Reads the list of `count` values below `universe` that encode wrote to `in` (reading only its
// encoded_bytes(count, universe) bytes) into out. Returns false, with out partly written, when
// the bytes are not such a list (damaged), so a damaged file never yields out-of-range values.
bool decode(const std::uint8_t* in, std::int64_t count, std::int64_t universe, std::uint32_t* out);

}  // namespace colmax::ef
