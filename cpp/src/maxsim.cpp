// Entry points: validation, splitting documents into chunks for threads, top-k selection.
#include "colmax/maxsim.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>

#include "dispatch.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

#if defined(__linux__)
#include <sched.h>
#endif

namespace colmax {
namespace {

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

// Below this much work (query tokens x document tokens) threads cost more than they save.
constexpr std::int64_t kMinParallelWork = std::int64_t(1) << 18;
// Chunks per worker: enough to balance ragged documents, few enough to amortise query setup.
constexpr std::int64_t kChunksPerThread = 16;

std::int64_t selected_count(const DocMatrix& docs, const DocSelection& sel) {
  return sel.all ? docs.n_docs : sel.count;
}

std::int64_t selected_tokens(const DocMatrix& docs, const DocSelection& sel) {
  if (sel.all) return docs.offsets[docs.n_docs];
  std::int64_t total = 0;
  for (std::int64_t i = 0; i < sel.count; ++i) total += docs.offsets[sel.ids[i] + 1] - docs.offsets[sel.ids[i]];
  return total;
}

void run(const QueryMatrix* queries, std::int64_t n_queries, const DocMatrix& docs, const DocSelection& sel, float* out,
         int threads) {
  const std::int64_t n = selected_count(docs, sel);
  if (n == 0) return;
  std::int64_t query_tokens = 0;
  for (std::int64_t i = 0; i < n_queries; ++i) query_tokens += queries[i].n_tokens;
  threads = resolve_threads(threads);
  if (query_tokens * selected_tokens(docs, sel) < kMinParallelWork) threads = 1;

  const kernels::ScoreFn kernel = active_kernel();
  const std::int64_t n_chunks = threads == 1 ? 1 : std::min<std::int64_t>(n, threads * kChunksPerThread);
  parallel_for_chunks(n_chunks, threads, [&](std::int64_t c) {
    const std::int64_t begin = n * c / n_chunks, end = n * (c + 1) / n_chunks;
    kernels::Batch batch{queries, n_queries,   &docs,       sel.all ? nullptr : sel.ids + begin,
                         begin,   end - begin, out + begin, n};
    kernel(batch);
  });
}

}  // namespace

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f16:
    case DType::bf16: return 2;
    case DType::i8: return 1;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float32";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::i8: return "int8";
  }
  return "unknown";
}

int default_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void validate(const QueryMatrix& query, const DocMatrix& docs, const DocSelection& sel) {
  if (query.n_tokens < 1) fail("query has no tokens: pass at least one query token vector");
  if (query.dim < 1) fail("query dimension must be at least 1");
  if (query.dim != docs.dim)
    fail("dimension mismatch: query vectors have dim " + std::to_string(query.dim) + " but document vectors have dim " +
         std::to_string(docs.dim) + "; encode both with the same model");
  for (std::int64_t i = 0; i < query.n_tokens * query.dim; ++i)
    if (!std::isfinite(query.data[i]))
      fail("query contains NaN or infinity (token " + std::to_string(i / query.dim) + "); pass finite values");
  if (docs.n_docs < 0 || docs.n_rows < 0) fail("negative document or row count");
  if (docs.dtype == DType::i8 && docs.scales == nullptr && docs.n_rows > 0)
    fail("int8 documents need their scales, one float32 per row (see quantize_int8)");
  if (docs.offsets[0] != 0) fail("doc_offsets must start at 0, got " + std::to_string(docs.offsets[0]));
  for (std::int64_t d = 0; d < docs.n_docs; ++d)
    if (docs.offsets[d + 1] < docs.offsets[d])
      fail("doc_offsets must never decrease, but doc_offsets[" + std::to_string(d + 1) +
           "] = " + std::to_string(docs.offsets[d + 1]) + " < doc_offsets[" + std::to_string(d) +
           "] = " + std::to_string(docs.offsets[d]));
  if (docs.offsets[docs.n_docs] != docs.n_rows)
    fail("doc_offsets must end at the number of token rows (" + std::to_string(docs.n_rows) + "), but ends at " +
         std::to_string(docs.offsets[docs.n_docs]));
  if (!sel.all)
    for (std::int64_t i = 0; i < sel.count; ++i)
      if (sel.ids[i] < 0 || sel.ids[i] >= docs.n_docs)
        fail("candidate " + std::to_string(sel.ids[i]) + " (position " + std::to_string(i) +
             ") is out of range: there are " + std::to_string(docs.n_docs) + " documents, indices 0.." +
             std::to_string(docs.n_docs - 1));
}

void maxsim(const QueryMatrix& query, const DocMatrix& docs, const DocSelection& sel, float* out, int threads) {
  const BusyCall busy;
  validate(query, docs, sel);
  run(&query, 1, docs, sel, out, threads);
}

void maxsim_batch(const QueryMatrix* queries, std::int64_t n_queries, const DocMatrix& docs, const DocSelection& sel,
                  float* out, int threads) {
  const BusyCall busy;
  if (n_queries < 1) fail("no queries: pass at least one query");
  for (std::int64_t i = 0; i < n_queries; ++i) {
    try {
      validate(queries[i], docs, sel);
    } catch (const std::invalid_argument& e) {
      fail("query " + std::to_string(i) + ": " + e.what());
    }
  }
  run(queries, n_queries, docs, sel, out, threads);
}

TopK maxsim_topk(const QueryMatrix& query, const DocMatrix& docs, std::int64_t k, const DocSelection& sel,
                 int threads) {
  const BusyCall busy;
  if (k < 1) fail("k must be at least 1, got " + std::to_string(k));
  validate(query, docs, sel);
  const std::int64_t n = selected_count(docs, sel);
  if (!sel.all) {
    std::vector<std::int64_t> sorted(sel.ids, sel.ids + sel.count);
    std::sort(sorted.begin(), sorted.end());
    const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    if (dup != sorted.end())
      fail("candidates contain document " + std::to_string(*dup) + " more than once; pass unique indices");
  }
  std::vector<float> scores(static_cast<std::size_t>(n));
  run(&query, 1, docs, sel, scores.data(), threads);

  // Rank by (score desc, document index asc); NaN ranks below every number.
  auto doc_of = [&](std::int64_t i) { return sel.all ? i : sel.ids[i]; };
  auto better = [&](std::int64_t a, std::int64_t b) {
    const float sa = scores[a], sb = scores[b];
    const bool nan_a = std::isnan(sa), nan_b = std::isnan(sb);
    if (nan_a || nan_b) {
      if (nan_a != nan_b) return nan_b;
    } else if (sa != sb) {
      return sa > sb;
    }
    return doc_of(a) < doc_of(b);
  };
  const std::int64_t kk = std::min(k, n);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[i] = i;
  std::partial_sort(order.begin(), order.begin() + kk, order.end(), better);

  TopK top;
  top.ids.reserve(kk);
  top.scores.reserve(kk);
  for (std::int64_t r = 0; r < kk; ++r) {
    top.ids.push_back(doc_of(order[r]));
    top.scores.push_back(scores[order[r]]);
  }
  return top;
}

}  // namespace colmax
