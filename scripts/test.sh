#!/usr/bin/env bash
# Every test colmax has: install the package with its test extra, then the C++ unit tests
# (ctest, in a Release build and again under AddressSanitizer + UBSan), then the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet ".[test]"

for variant in release asan; do
  sanitize=OFF
  [ "$variant" = asan ] && sanitize=ON
  cmake -S . -B "build/cpp-tests-$variant" -DCOLMAX_BUILD_TESTS=ON -DCOLMAX_SANITIZE="$sanitize" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "build/cpp-tests-$variant" --parallel 2
  ctest --test-dir "build/cpp-tests-$variant" --output-on-failure --parallel 2
done

python -m pytest
