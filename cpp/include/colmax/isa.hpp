// Instruction sets colmax has kernels for: which were compiled, which this CPU and OS run,
// and which one is active. Detection happens once; COLMAX_ISA=<name> in the environment or
// set_active_isa() forces one (tests use it to exercise every compiled kernel).
#pragma once

#include <string>
#include <vector>

namespace colmax {

enum class Isa {
  scalar,      // portable C++; the specification every other kernel is tested against
  avx2,        // AVX2 + FMA + F16C
  avxvnni,     // avx2 plus AVX-VNNI (VEX vpdpbusd) for int8 documents, without AVX-512
  avx512,      // AVX-512 F/BW/DQ/VL
  avx512vnni,  // avx512 plus AVX512_VNNI for int8 documents
  avx512bf16,  // avx512vnni plus AVX512_BF16 dot products for bfloat16 documents
  amx,         // avx512bf16 plus AMX tile multiplies: AMX-BF16 for bfloat16 documents, AMX-INT8 for int8
};

const char* isa_name(Isa isa);
Isa isa_from_name(const std::string& name);  // throws std::invalid_argument for an unknown name

std::vector<Isa> compiled_isas();   // kernels present in this build, slowest first
std::vector<Isa> supported_isas();  // compiled and runnable on this CPU and OS, slowest first
Isa active_isa();
void set_active_isa(Isa isa);  // throws std::invalid_argument if this machine cannot run it

}  // namespace colmax
