// Portable float16 / bfloat16 -> float32 widening, bit-exact with the hardware conversions.
#pragma once

#include <cstdint>
#include <cstring>

#include "colmax/maxsim.hpp"

namespace colmax {

inline float bits_to_float(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline float bf16_to_float(std::uint16_t h) { return bits_to_float(std::uint32_t(h) << 16); }

inline float f16_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  std::uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) return bits_to_float(sign | 0x7F800000u | (mantissa << 13));  // inf / NaN
  if (exponent != 0) return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_to_float(sign);
  // Subnormal half: renormalise into a float32 exponent.
  std::uint32_t e = 113;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return bits_to_float(sign | (e << 23) | ((mantissa & 0x3FFu) << 13));
}

// Element `i` of a row stored in `dtype`, as float32 (int8: the stored integer, without its row's scale).
inline float load_as_float(const void* row, std::int64_t i, DType dtype) {
  switch (dtype) {
    case DType::f32: return static_cast<const float*>(row)[i];
    case DType::f16: return f16_to_float(static_cast<const std::uint16_t*>(row)[i]);
    case DType::bf16: return bf16_to_float(static_cast<const std::uint16_t*>(row)[i]);
    case DType::i8: return static_cast<const std::int8_t*>(row)[i];  // unscaled: the scale is per row
  }
  return 0.0f;
}

}  // namespace colmax
