// Instruction-set bookkeeping: names round-trip, detection is consistent, forcing works.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <stdexcept>
#include <string>

#include "colmax/isa.hpp"

namespace {

TEST(Isa, NamesRoundTrip) {
  for (colmax::Isa isa : colmax::compiled_isas()) EXPECT_EQ(colmax::isa_from_name(colmax::isa_name(isa)), isa);
  EXPECT_THROW(colmax::isa_from_name("sse9"), std::invalid_argument);
}

TEST(Isa, SupportedIsCompiledAndIncludesScalar) {
  const auto compiled = colmax::compiled_isas();
  const auto supported = colmax::supported_isas();
  ASSERT_FALSE(supported.empty());
  EXPECT_EQ(supported.front(), colmax::Isa::scalar);
  for (colmax::Isa isa : supported) EXPECT_NE(std::find(compiled.begin(), compiled.end(), isa), compiled.end());
}

TEST(Isa, ForcingEachSupportedIsaSticks) {
  const colmax::Isa before = colmax::active_isa();
  for (colmax::Isa isa : colmax::supported_isas()) {
    colmax::set_active_isa(isa);
    EXPECT_EQ(colmax::active_isa(), isa);
  }
  colmax::set_active_isa(before);
}

// Every kernel test is instantiated over supported_isas(): on an AVX2-only machine the AVX-512
// and AMX kernels are compiled but never run. scripts/test.sh prints this test's output after
// ctest so that every run says which kernels it exercised.
TEST(Isa, ReportsKernelCoverage) {
  std::string exercised, unreachable;
  const auto supported = colmax::supported_isas();
  for (colmax::Isa isa : colmax::compiled_isas()) {
    const bool runs = std::find(supported.begin(), supported.end(), isa) != supported.end();
    std::string& list = runs ? exercised : unreachable;
    list += (list.empty() ? "" : ", ") + std::string(colmax::isa_name(isa));
  }
  std::cout << "C++ kernels exercised against the scalar reference: " << exercised << "\n";
  std::cout << "C++ kernels compiled but NOT exercised, this CPU cannot run them: "
            << (unreachable.empty() ? "none" : unreachable) << "\n";
  EXPECT_FALSE(exercised.empty());
}

}  // namespace
