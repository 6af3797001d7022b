// AVX-VNNI MaxSim for int8 documents (CPUs with the VEX-encoded vpdpbusd and no AVX-512, such as
// Alder Lake): four byte products per lane and instruction accumulated in 32 bits, 8 query tokens
// per register, 6 document tokens per tile. Other storage types use the AVX2 kernels.
#include "plaid_residual.hpp"
#include "simd_common.hpp"

namespace colmax::kernels {
namespace avxvnni {

#include "int8_ymm.inl"

struct I8 : I8Ymm {
  static constexpr int tile_rows = 6;
  static acc madd(acc a, oper q, oper d) { return _mm256_dpbusd_avx_epi32(a, d, q); }
};

#include "maxsim_tiles.inl"
#include "plaid_residual.inl"

}  // namespace avxvnni

void score_residuals_avxvnni(const ResidualBatch& batch) { avxvnni::score_residuals<avxvnni::I8>(batch); }

void score_avxvnni(const Batch& batch) {
  if (batch.docs->dtype == DType::i8)
    avxvnni::score_batch<avxvnni::I8, avxvnni::RowSource::bias_i8>(batch);
  else
    score_avx2(batch);
}

}  // namespace colmax::kernels
