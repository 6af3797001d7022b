// The kernels of the active instruction set (see colmax/isa.hpp).
#pragma once

#include "kernels.hpp"
#include "plaid_kernels.hpp"
#include "plaid_residual.hpp"

namespace colmax {
kernels::ScoreFn active_kernel();
kernels::QuantizeFn active_quantizer();
// avx512 (without VNNI) scores residuals with the AVX2 kernel, the levels above avx512vnni with it.
kernels::ResidualFn active_residual_scorer();
// avxvnni uses the AVX2 plaid kernels, avx512vnni, avx512bf16 and amx the AVX-512 ones: the
// compressed index works in float32.
const kernels::PlaidKernels& active_plaid_kernels();
}  // namespace colmax
