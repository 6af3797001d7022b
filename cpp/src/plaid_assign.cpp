// k-means assignment: every row to its nearest centroid, exactly (assign) or through groups of
// centroids for large codebooks (assign_grouped).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "aligned.hpp"
#include "colmax/plaid.hpp"
#include "dispatch.hpp"
#include "parallel.hpp"
#include "plaid_common.hpp"
#include "plaid_kernels.hpp"

namespace colmax::plaid {

using detail::ceil_div, detail::fail, detail::ranks_before, detail::require_finite, detail::str;

namespace {

// Rows per chunk of work: large enough to amortise a chunk's setup, small enough to balance.
constexpr std::int64_t kAssignChunkRows = 256;
// Rows per chunk of assign_grouped: their probes are sorted by group, so that each group's members
// are scored against all the chunk's rows probing it in one tiled pass.
constexpr std::int64_t kGroupedChunkRows = 4096;
// Lloyd steps that group the centroids for assign_grouped.
constexpr int kGroupingSteps = 4;

void validate_assign(const float* x, std::int64_t n, std::int64_t dim, const float* centroids, std::int64_t n_centroids,
                     const std::int32_t* codes) {
  if (n < 0) fail("negative row count");
  if (dim < 1) fail("dimension must be at least 1");
  if (n_centroids < 1 || n_centroids > (std::int64_t(1) << 24))
    fail("need 1 to 2^24 centroids (indices travel as exact float32), got " + str(n_centroids));
  if (centroids == nullptr || (n > 0 && (x == nullptr || codes == nullptr))) fail("null data pointer");
  require_finite(centroids, n_centroids * dim, dim, "centroids");
}

// assign_grouped's two levels: group means, and the centroids of each group with their rows
// copied together so a group scores as one contiguous matrix.
struct CentroidGroups {
  std::int64_t count = 0;
  std::vector<float> means;           // count x dim
  std::vector<std::int64_t> offsets;  // count + 1
  std::vector<std::int32_t> members;  // centroid ids, group by group, ascending within a group
  std::vector<float> rows;            // the members' centroid rows in that order
};

CentroidGroups group_centroids(const float* centroids, std::int64_t k, std::int64_t dim, int threads) {
  const std::int64_t g = std::clamp<std::int64_t>(std::llround(std::sqrt(static_cast<double>(k))), 1, k);
  bool unit = true;
  for (std::int64_t c = 0; c < k && unit; ++c) {
    double squares = 0.0;
    for (std::int64_t j = 0; j < dim; ++j) squares += double(centroids[c * dim + j]) * centroids[c * dim + j];
    unit = std::abs(std::sqrt(squares) - 1.0) < 1e-3;
  }
  std::vector<float> means(static_cast<std::size_t>(g * dim));
  for (std::int64_t i = 0; i < g; ++i) std::copy_n(centroids + (i * k / g) * dim, dim, means.begin() + i * dim);
  std::vector<std::int32_t> of(static_cast<std::size_t>(k));
  std::vector<std::int64_t> counts(static_cast<std::size_t>(g));
  std::vector<double> sums;
  for (int step = 0;; ++step) {
    assign(centroids, k, dim, means.data(), g, of.data(), nullptr, threads);
    std::fill(counts.begin(), counts.end(), 0);
    for (std::int64_t c = 0; c < k; ++c) ++counts[of[c]];
    if (step == kGroupingSteps) break;
    sums.assign(static_cast<std::size_t>(g * dim), 0.0);
    for (std::int64_t c = 0; c < k; ++c)
      for (std::int64_t j = 0; j < dim; ++j) sums[of[c] * dim + j] += centroids[c * dim + j];
    for (std::int64_t i = 0; i < g; ++i) {
      if (counts[i] == 0) continue;  // keeps its mean; dropped below if it stays empty
      double squares = 0.0;
      for (std::int64_t j = 0; j < dim; ++j) {
        const double m = sums[i * dim + j] / static_cast<double>(counts[i]);
        sums[i * dim + j] = m;
        squares += m * m;
      }
      const double scale = unit && squares > 0.0 ? 1.0 / std::sqrt(squares) : 1.0;
      for (std::int64_t j = 0; j < dim; ++j) means[i * dim + j] = static_cast<float>(sums[i * dim + j] * scale);
    }
  }
  CentroidGroups out;
  std::vector<std::int64_t> renamed(static_cast<std::size_t>(g), -1);
  out.offsets.push_back(0);
  for (std::int64_t i = 0; i < g; ++i) {
    if (counts[i] == 0) continue;
    renamed[i] = out.count++;
    out.means.insert(out.means.end(), means.begin() + i * dim, means.begin() + (i + 1) * dim);
    out.offsets.push_back(out.offsets.back() + counts[i]);
  }
  std::vector<std::int64_t> next(out.offsets.begin(), out.offsets.end() - 1);
  out.members.resize(static_cast<std::size_t>(k));
  out.rows.resize(static_cast<std::size_t>(k * dim));
  for (std::int64_t c = 0; c < k; ++c) {
    const std::int64_t slot = next[renamed[of[c]]]++;
    out.members[slot] = static_cast<std::int32_t>(c);
    std::copy_n(centroids + c * dim, dim, out.rows.begin() + slot * dim);
  }
  return out;
}

// One worker's buffers for assign_grouped, reused across its chunks.
struct GroupedScratch {
  AlignedBuffer<float> table;        // group scores of kAssignChunkRows rows
  std::vector<std::int32_t> probes;  // rows x probes: each row's best groups
  std::vector<std::int64_t> starts;  // groups + 1: the rows probing each group, as a range of `order`
  std::vector<std::int32_t> order;   // row indices, sorted by probed group
  std::vector<float> gathered;       // one group's rows
  std::vector<std::int32_t> local_codes;
  std::vector<float> local_best, best;
};

// Rows [0, rows) of x: each row's `probes` best groups by the score of their means, ties to the
// lower group.
void probe_groups_of(const float* x, std::int64_t rows, std::int64_t dim, const CentroidGroups& groups,
                     std::int64_t probes, const kernels::PlaidKernels& kern, GroupedScratch& sc) {
  const std::int64_t g = groups.count;
  if (sc.table.size() < static_cast<std::size_t>(g * kAssignChunkRows))
    sc.table.assign_zero(static_cast<std::size_t>(g * kAssignChunkRows));
  sc.probes.resize(static_cast<std::size_t>(rows * probes));
  std::vector<float> top(static_cast<std::size_t>(probes));
  for (std::int64_t r0 = 0; r0 < rows; r0 += kAssignChunkRows) {
    const std::int64_t m = std::min(kAssignChunkRows, rows - r0), pad = ceil_div(m, 16) * 16;
    kern.centroid_scores({x + r0 * dim, m, dim}, groups.means.data(), g, pad, sc.table.data());
    for (std::int64_t i = 0; i < m; ++i) {
      std::int32_t* best = sc.probes.data() + (r0 + i) * probes;
      std::int64_t filled = 0;
      // insertion into the sorted best-so-far; groups come in ascending order, so a tie never
      // displaces an earlier group
      for (std::int64_t j = 0; j < g; ++j) {
        const float s = sc.table.data()[j * pad + i];
        if (filled == probes && !ranks_before(s, j, top[probes - 1], best[probes - 1])) continue;
        std::int64_t at = filled < probes ? filled++ : probes - 1;
        for (; at > 0 && ranks_before(s, j, top[at - 1], best[at - 1]); --at) {
          top[at] = top[at - 1];
          best[at] = best[at - 1];
        }
        top[at] = s;
        best[at] = static_cast<std::int32_t>(j);
      }
    }
  }
}

}  // namespace

void assign(const float* x, std::int64_t n, std::int64_t dim, const float* centroids, std::int64_t n_centroids,
            std::int32_t* codes, float* best_scores, int threads) {
  validate_assign(x, n, dim, centroids, n_centroids, codes);
  const kernels::PlaidKernels& kern = active_plaid_kernels();
  parallel_for_chunks(ceil_div(n, kAssignChunkRows), resolve_threads(threads), [&](std::int64_t c) {
    const std::int64_t begin = c * kAssignChunkRows, rows = std::min(kAssignChunkRows, n - begin);
    require_finite(x + begin * dim, rows * dim, dim, "x");
    kern.assign(x + begin * dim, rows, dim, centroids, n_centroids, codes + begin,
                best_scores == nullptr ? nullptr : best_scores + begin);
  });
}

void assign_grouped(const float* x, std::int64_t n, std::int64_t dim, const float* centroids, std::int64_t n_centroids,
                    std::int64_t probe_groups, std::int32_t* codes, float* best_scores, int threads) {
  validate_assign(x, n, dim, centroids, n_centroids, codes);
  if (probe_groups < 1) fail("probe_groups must be at least 1, got " + str(probe_groups));
  threads = resolve_threads(threads);
  const CentroidGroups groups = group_centroids(centroids, n_centroids, dim, threads);
  const std::int64_t probes = std::min(probe_groups, groups.count);
  const kernels::PlaidKernels& kern = active_plaid_kernels();
  const std::int64_t n_chunks = ceil_div(n, kGroupedChunkRows);
  std::vector<GroupedScratch> scratch(static_cast<std::size_t>(worker_count(n_chunks, threads)));
  parallel_for_chunks_on_workers(n_chunks, threads, [&](int worker, std::int64_t c) {
    const std::int64_t begin = c * kGroupedChunkRows, rows = std::min(kGroupedChunkRows, n - begin);
    const float* xc = x + begin * dim;
    require_finite(xc, rows * dim, dim, "x");
    GroupedScratch& sc = scratch[worker];
    probe_groups_of(xc, rows, dim, groups, probes, kern, sc);

    // Counting sort of the (row, group) probes by group.
    sc.starts.assign(static_cast<std::size_t>(groups.count + 1), 0);
    for (std::int32_t group : sc.probes) ++sc.starts[group + 1];
    for (std::int64_t j = 0; j < groups.count; ++j) sc.starts[j + 1] += sc.starts[j];
    sc.order.resize(sc.probes.size());
    std::vector<std::int64_t> next(sc.starts.begin(), sc.starts.end() - 1);
    for (std::int64_t p = 0; p < rows * probes; ++p)
      sc.order[next[sc.probes[p]]++] = static_cast<std::int32_t>(p / probes);

    // Each group's members against all the rows probing it, merged into the rows' best.
    sc.best.assign(static_cast<std::size_t>(rows), -std::numeric_limits<float>::infinity());
    std::int32_t* out = codes + begin;
    std::fill(out, out + rows, std::numeric_limits<std::int32_t>::max());
    sc.gathered.resize(static_cast<std::size_t>(rows * dim));
    sc.local_codes.resize(static_cast<std::size_t>(rows));
    sc.local_best.resize(static_cast<std::size_t>(rows));
    for (std::int64_t j = 0; j < groups.count; ++j) {
      const std::int64_t first = sc.starts[j], m = sc.starts[j + 1] - first;
      if (m == 0) continue;
      for (std::int64_t r = 0; r < m; ++r)
        std::copy_n(xc + sc.order[first + r] * dim, dim, sc.gathered.begin() + r * dim);
      const std::int64_t member0 = groups.offsets[j];
      kern.assign(sc.gathered.data(), m, dim, groups.rows.data() + member0 * dim, groups.offsets[j + 1] - member0,
                  sc.local_codes.data(), sc.local_best.data());
      for (std::int64_t r = 0; r < m; ++r) {
        const std::int64_t row = sc.order[first + r];
        const std::int32_t code = groups.members[member0 + sc.local_codes[r]];
        const float s = sc.local_best[r];
        if (s > sc.best[row] || (s == sc.best[row] && code < out[row])) {
          sc.best[row] = s;
          out[row] = code;
        }
      }
    }
    if (best_scores != nullptr) std::copy_n(sc.best.begin(), rows, best_scores + begin);
  });
}

}  // namespace colmax::plaid
