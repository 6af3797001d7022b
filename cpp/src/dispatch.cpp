// Instruction-set detection (CPUID feature bits and the OS-enabled register state in XCR0),
// done once; the active kernel is a function pointer read by maxsim.cpp.
#include "dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <string>

#include "colmax/isa.hpp"
#include "kernels.hpp"

#if defined(COLMAX_X86)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace colmax {
namespace {

// Every instruction set by name, weakest first: compiled_isas() on x86 lists them in this order,
// and the default is the last one that runs here.
constexpr Isa kAllIsas[] = {Isa::scalar,     Isa::avx2,       Isa::avxvnni, Isa::avx512,
                            Isa::avx512vnni, Isa::avx512bf16, Isa::amx};

#if defined(COLMAX_X86)
struct CpuFeatures {
  bool avx2 = false, avxvnni = false, avx512 = false, avx512vnni = false, avx512bf16 = false, amx = false;
};

// Linux hands out AMX tile state only to processes that ask for it (ARCH_REQ_XCOMP_PERM).
bool request_amx_permission() {
#if defined(__linux__)
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

std::uint64_t xgetbv0() {
  std::uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (std::uint64_t(edx) << 32) | eax;
}

CpuFeatures detect_cpu() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12), f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  const std::uint64_t xcr0 = xgetbv0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;    // SSE + AVX registers saved by the OS
  const bool zmm_state = (xcr0 & 0xE6) == 0xE6;  // + opmask, upper ZMM0-15, ZMM16-31
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const bool avx2 = b & (1u << 5);
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));  // F DQ BW VL
  f.avx2 = ymm_state && avx2 && fma && f16c;
  f.avx512 = f.avx2 && zmm_state && avx512;
  f.avx512vnni = f.avx512 && (c & (1u << 11));
  const bool amx_tile = d & (1u << 24), amx_bf16 = d & (1u << 22), amx_int8 = d & (1u << 25);
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;  // XTILECFG + XTILEDATA
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    f.avxvnni = f.avx2 && (a & (1u << 4));
    // Every CPU with AVX512_BF16 has AVX512_VNNI; requiring it keeps the levels nested.
    f.avx512bf16 = f.avx512vnni && (a & (1u << 5));
  }
  f.amx = f.avx512bf16 && amx_tile && amx_bf16 && amx_int8 && tile_state && request_amx_permission();
  return f;
}
#endif

kernels::ScoreFn kernel_for(Isa isa) {
  switch (isa) {
    case Isa::scalar: return kernels::score_scalar;
#if defined(COLMAX_X86)
    case Isa::avx2: return kernels::score_avx2;
    case Isa::avxvnni: return kernels::score_avxvnni;
    case Isa::avx512: return kernels::score_avx512;
    case Isa::avx512vnni: return kernels::score_avx512vnni;
    case Isa::avx512bf16: return kernels::score_avx512bf16;
    case Isa::amx: return kernels::score_amx;
#else
    default: break;
#endif
  }
  throw std::invalid_argument(std::string("instruction set '") + isa_name(isa) + "' is not compiled in this build");
}

bool runs_here(Isa isa) {
#if defined(COLMAX_X86)
  static const CpuFeatures cpu = detect_cpu();
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return cpu.avx2;
    case Isa::avxvnni: return cpu.avxvnni;
    case Isa::avx512: return cpu.avx512;
    case Isa::avx512vnni: return cpu.avx512vnni;
    case Isa::avx512bf16: return cpu.avx512bf16;
    case Isa::amx: return cpu.amx;
  }
  return false;
#else
  return isa == Isa::scalar;
#endif
}

struct Active {
  std::atomic<Isa> isa;
  Active() : isa(initial()) {}

  static Isa initial() {
    if (const char* forced = std::getenv("COLMAX_ISA"); forced != nullptr && *forced != '\0') {
      const Isa isa = isa_from_name(forced);  // an unknown name fails loudly at import
      if (!runs_here(isa))
        throw std::invalid_argument(std::string("COLMAX_ISA=") + forced +
                                    " cannot run on this machine; supported: " + supported_list());
      return isa;
    }
    return supported_isas().back();
  }
  static std::string supported_list() {
    std::string names;
    for (Isa i : supported_isas()) names += (names.empty() ? "" : ", ") + std::string(isa_name(i));
    return names;
  }
};

Active& active() {
  static Active a;
  return a;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avxvnni: return "avxvnni";
    case Isa::avx512: return "avx512";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::avx512bf16: return "avx512bf16";
    case Isa::amx: return "amx";
  }
  return "unknown";
}

Isa isa_from_name(const std::string& name) {
  std::string names;
  for (Isa isa : kAllIsas) {
    if (name == isa_name(isa)) return isa;
    names += (names.empty() ? "" : ", ") + std::string(isa_name(isa));
  }
  throw std::invalid_argument("unknown instruction set '" + name + "'; use one of: " + names);
}

std::vector<Isa> compiled_isas() {
#if defined(COLMAX_X86)
  return {std::begin(kAllIsas), std::end(kAllIsas)};
#else
  return {Isa::scalar};
#endif
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : compiled_isas())
    if (runs_here(isa)) out.push_back(isa);
  return out;
}

Isa active_isa() { return active().isa.load(); }

void set_active_isa(Isa isa) {
  bool compiled = false;
  for (Isa c : compiled_isas()) compiled = compiled || c == isa;
  if (!compiled)
    throw std::invalid_argument(std::string("instruction set '") + isa_name(isa) + "' is not compiled in this build");
  if (!runs_here(isa))
    throw std::invalid_argument(std::string("instruction set '") + isa_name(isa) +
                                "' cannot run on this machine; supported: " + Active::supported_list());
  active().isa.store(isa);
}

kernels::ScoreFn active_kernel() { return kernel_for(active_isa()); }

kernels::ResidualFn active_residual_scorer() {
  switch (active_isa()) {
#if defined(COLMAX_X86)
    case Isa::avx2:
    case Isa::avx512: return kernels::score_residuals_avx2;
    case Isa::avxvnni: return kernels::score_residuals_avxvnni;
    case Isa::avx512vnni:
    case Isa::avx512bf16:
    case Isa::amx: return kernels::score_residuals_avx512vnni;
#endif
    default: return kernels::score_residuals_scalar;
  }
}

kernels::QuantizeFn active_quantizer() {
  switch (active_isa()) {
#if defined(COLMAX_X86)
    case Isa::avx2:
    case Isa::avxvnni: return kernels::quantize_avx2;
    case Isa::avx512:
    case Isa::avx512vnni:
    case Isa::avx512bf16:
    case Isa::amx: return kernels::quantize_avx512;
#endif
    default: return kernels::quantize_scalar;
  }
}

const kernels::PlaidKernels& active_plaid_kernels() {
  switch (active_isa()) {
#if defined(COLMAX_X86)
    case Isa::avx2:
    case Isa::avxvnni: return kernels::plaid_avx2;
    case Isa::avx512:
    case Isa::avx512vnni:
    case Isa::avx512bf16:
    case Isa::amx: return kernels::plaid_avx512;
#endif
    default: return kernels::plaid_scalar;
  }
}

}  // namespace colmax
