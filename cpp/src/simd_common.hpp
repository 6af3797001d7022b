// What every SIMD kernel file includes before maxsim_tiles.inl.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "aligned.hpp"
#include "colmax/quantize.hpp"
#include "convert.hpp"
#include "kernels.hpp"

#define COLMAX_ALWAYS_INLINE inline __attribute__((always_inline))
#define COLMAX_UNROLL _Pragma("GCC unroll 32")

namespace colmax {

// Round-to-nearest-even float32 -> bfloat16 bits (inputs are finite: queries are validated).
inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

}  // namespace colmax
