#!/usr/bin/env bash
# Every check colmax has: install the package with its test extra and the extras whose code is
# tested (server, RAG frameworks), lint and format checks,
# the C++ unit tests (ctest, in a Release build and again under AddressSanitizer + UBSan),
# then the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet ".[test,server,ray,langchain,llama-index]"

# Style guardrails: the same formatters and linter the code was written with.
ruff check python tests benchmarks scripts
ruff format --check python tests benchmarks scripts
find cpp -name '*.cpp' -o -name '*.hpp' -o -name '*.inl' | xargs clang-format --dry-run --Werror

for variant in release asan; do
  sanitize=OFF
  [ "$variant" = asan ] && sanitize=ON
  cmake -S . -B "build/cpp-tests-$variant" -DCOLMAX_BUILD_TESTS=ON -DCOLMAX_SANITIZE="$sanitize" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "build/cpp-tests-$variant" --parallel 2
  ctest --test-dir "build/cpp-tests-$variant" --output-on-failure --parallel 2
done
# ctest keeps test output to itself: print which kernels the C++ tests could run on this CPU.
build/cpp-tests-release/colmax_tests --gtest_filter=Isa.ReportsKernelCoverage | grep '^C++ kernels'

python -m pytest
