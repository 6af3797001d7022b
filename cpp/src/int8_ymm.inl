// The 256-bit int8 policy members shared by the AVX2 and AVX-VNNI kernels (see maxsim_tiles.inl);
// each of those files adds its multiply-accumulate and tile height. Included inside namespace
// colmax::kernels::<isa>, compiled with that file's flags.

struct I8Ymm {
  using acc = __m256i;
  using reg = __m256;
  using oper = __m256i;
  using q_elem = std::uint32_t;  // four signed query values
  using d_elem = std::uint32_t;  // four biased (unsigned) document values
  static constexpr int lanes = 8;
  static constexpr bool quantized = true;

  static std::int64_t steps(std::int64_t dim) { return (dim + 3) / 4; }
  static acc zero() { return _mm256_setzero_si256(); }
  static oper load_q(const std::uint32_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  static oper bcast_d(const std::uint32_t* p) { return _mm256_set1_epi32(static_cast<int>(*p)); }
  static reg load_f(const float* p) { return _mm256_load_ps(p); }
  static void store_f(float* p, reg v) { _mm256_store_ps(p, v); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static acc load_i(const std::int32_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  static reg dequant(acc a, float scale) { return _mm256_mul_ps(_mm256_cvtepi32_ps(a), _mm256_set1_ps(scale)); }
  static void bias_rows(const std::int8_t* in, std::uint8_t* out, std::int64_t rows, std::int64_t dim,
                        std::int64_t stride) {
    if (stride != dim) {  // padded rows: one at a time
      for (std::int64_t r = 0; r < rows; ++r) bias_rows(in + r * dim, out + r * stride, 1, dim, dim);
      return;
    }
    const __m256i flip = _mm256_set1_epi8(-128);
    const std::int64_t n = rows * dim;
    std::int64_t i = 0;
    for (; i + 32 <= n; i += 32)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                          _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i)), flip));
    for (; i < n; ++i) out[i] = static_cast<std::uint8_t>(in[i]) ^ 0x80u;
  }
};
