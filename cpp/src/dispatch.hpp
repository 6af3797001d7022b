// The kernel of the active instruction set (see colmax/isa.hpp).
#pragma once

#include "kernels.hpp"

namespace colmax {
kernels::ScoreFn active_kernel();
}
