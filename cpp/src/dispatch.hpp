// The kernels of the active instruction set (see colmax/isa.hpp).
#pragma once

#include "kernels.hpp"
#include "plaid_kernels.hpp"

namespace colmax {
kernels::ScoreFn active_kernel();
// avx512bf16 and amx use the AVX-512 float32 kernels: the compressed index works in float32.
const kernels::PlaidKernels& active_plaid_kernels();
}  // namespace colmax
