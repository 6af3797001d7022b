// Instruction-set bookkeeping: names round-trip, detection is consistent, forcing works.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

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

}  // namespace
