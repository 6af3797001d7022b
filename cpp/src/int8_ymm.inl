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
  static constexpr bool paired = false;

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
  static reg to_float(acc a) { return _mm256_cvtepi32_ps(a); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg set1(float v) { return _mm256_set1_ps(v); }

  // plaid_residual.hpp's spread_row: 4-bit rows by vpshufb on their nibbles, 2-bit rows by
  // gathering each packed byte's four bytes, the rest (and other widths) byte by byte.
  static void spread(const ResidualBook& book, const std::uint8_t* packed, std::uint8_t* out) {
    const std::int64_t dim = book.dim;
    std::int64_t j = 0;
    if (book.nbits == 4) {
      const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(book.biased)));
      const __m256i low = _mm256_set1_epi16(0x000F), high = _mm256_set1_epi16(0x0F00);
      for (; j + 32 <= dim; j += 32) {
        const __m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + j / 2)));
        const __m256i nibbles =
            _mm256_or_si256(_mm256_and_si256(x, low), _mm256_and_si256(_mm256_slli_epi16(x, 4), high));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), _mm256_shuffle_epi8(table, nibbles));
      }
    } else if (book.nbits == 2) {
      const auto* words = reinterpret_cast<const int*>(book.spread);
      for (; j + 32 <= dim; j += 32) {
        const __m256i index = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed + j / 4)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), _mm256_i32gather_epi32(words, index, 4));
      }
    }
    const int per_byte = 8 / book.nbits;
    for (; j < dim; j += per_byte) std::memcpy(out + j, book.spread + packed[j / per_byte] * per_byte, per_byte);
  }

  // <K, C8> and <K, K> of a biased row (K = biased - 128), exactly: int16 products summed in pairs.
  static void row_dots(const std::uint8_t* biased, const std::int8_t* c8, std::int64_t dim, std::int32_t& cross,
                       std::int32_t& self) {
    const __m128i flip = _mm_set1_epi8(-128);
    __m256i cr = _mm256_setzero_si256(), kk = _mm256_setzero_si256();
    std::int64_t j = 0;
    for (; j + 16 <= dim; j += 16) {
      const __m256i k =
          _mm256_cvtepi8_epi16(_mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(biased + j)), flip));
      const __m256i c = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c8 + j)));
      cr = _mm256_add_epi32(cr, _mm256_madd_epi16(k, c));
      kk = _mm256_add_epi32(kk, _mm256_madd_epi16(k, k));
    }
    alignas(32) std::int32_t a[8], b[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(a), cr);
    _mm256_store_si256(reinterpret_cast<__m256i*>(b), kk);
    cross = self = 0;
    for (int u = 0; u < 8; ++u) {
      cross += a[u];
      self += b[u];
    }
    for (; j < dim; ++j) {
      const std::int32_t v = std::int32_t(biased[j]) - 128;
      cross += v * c8[j];
      self += v * v;
    }
  }
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
