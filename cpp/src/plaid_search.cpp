// The staged search over compressed segments: (a) centroid scores and probing, (b) candidates
// from the inverted lists, (c) approximate scores, (d) exact scores, each cut over all segments.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "colmax/plaid.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "aligned.hpp"
#include "colmax/elias_fano.hpp"
#include "colmax/quantize.hpp"
#include "dispatch.hpp"
#include "parallel.hpp"
#include "plaid_common.hpp"
#include "plaid_kernels.hpp"

namespace colmax::plaid {

using detail::ceil_div, detail::Decoder, detail::DocCodeReader, detail::fail, detail::ivf_universe,
    detail::ranks_before, detail::require_finite, detail::str;

namespace {

// Centroids per chunk of the centroid scores (stage a).
constexpr std::int64_t kCentroidChunk = 1024;
// Probes per query token up to which stage (a) keeps running lists instead of selecting.
constexpr std::int64_t kFewProbes = 8;
// Stage (b) keeps this many candidates per document stage (c) keeps: its byte scores see only
// the probed centroids, so it needs a wider margin. SciFact top-10 recall with the defaults:
// 0.959 with no cut, 0.957 with 4, 0.955 with 2 (docs/plaid.md).
constexpr std::int64_t kPrunedPerCandidate = 4;
// Bytes of stage (b)'s per-document maxima in one block of documents: half of a 2 MiB L2.
constexpr std::int64_t kPruningBlockBytes = std::int64_t(1) << 20;

// Documents per chunk of stages (c) and (d): large enough to amortise a chunk's setup, small enough
// to balance.
constexpr std::int64_t kApproxChunkDocs = 512;
constexpr std::int64_t kExactChunkDocs = 32;

void validate_query(const QueryMatrix& q, std::int64_t dim) {
  if (q.n_tokens < 1) fail("query has no tokens: pass at least one query token vector");
  if (q.dim != dim)
    fail("dimension mismatch: query vectors have dim " + str(q.dim) + " but the codebook has dim " + str(dim) +
         "; encode queries with the model that built the index");
  require_finite(q.data, q.n_tokens * q.dim, q.dim, "query");
}

void validate_segment(const QueryMatrix& query, const Codebook& cb, const Segment& s, std::int64_t i) {
  const std::string where = "segment " + str(i) + ": ";
  if (s.offsets == nullptr || s.codes.offsets == nullptr || s.residuals == nullptr ||
      (s.codes.bytes == nullptr && s.codes.n_bytes > 0))
    fail(where + "codes, residuals and offsets are required");
  if (s.n_docs < 0) fail(where + "negative document count");
  const DocMatrix layout{nullptr, DType::f32, s.offsets[s.n_docs], cb.dim, s.offsets, s.n_docs};
  try {
    colmax::validate(query, layout, s.allowed);
    if (s.exact != nullptr) {
      if (s.exact->n_docs != s.n_docs || s.exact->n_rows != layout.n_rows ||
          !std::equal(s.offsets, s.offsets + s.n_docs + 1, s.exact->offsets))
        fail("exact token vectors must hold the segment's documents with the same offsets");
      colmax::validate(query, *s.exact, s.allowed);
    }
  } catch (const std::invalid_argument& e) {
    fail(where + e.what());
  }
  if (!s.allowed.all)
    for (std::int64_t j = 1; j < s.allowed.count; ++j)
      if (s.allowed.ids[j] <= s.allowed.ids[j - 1])
        fail(where + "allowed document ids must be sorted ascending without repeats; pass numpy.unique(allowed)");
  if (s.codes.offsets[0] != 0 || s.codes.offsets[s.n_docs] != s.codes.n_bytes)
    fail(where + "the document codes' offsets must run from 0 to their size; build them with encode_doc_codes");
}

// The documents `complete` lists, one selection per segment, checked; it is shown `candidates`.
std::vector<DocSelection> to_complete(const CompleteFn& complete,
                                      const std::vector<std::vector<std::int64_t>>& candidates, const Segment* segments,
                                      std::int64_t n_segments) {
  std::vector<DocSelection> out = complete ? complete(candidates) : std::vector<DocSelection>();
  if (!complete) out.assign(static_cast<std::size_t>(n_segments), DocSelection::subset(nullptr, 0));
  if (static_cast<std::int64_t>(out.size()) != n_segments)
    fail("documents to complete: " + str(static_cast<std::int64_t>(out.size())) + " lists for " + str(n_segments) +
         " segments; pass one list per segment");
  for (std::int64_t i = 0; i < n_segments; ++i) {
    const DocSelection& c = out[i];
    const std::string where = "segment " + str(i) + ": documents to complete ";
    if (c.all) fail(where + "must be listed (an empty list for none)");
    for (std::int64_t j = 0; j < c.count; ++j) {
      if (c.ids[j] < 0 || c.ids[j] >= segments[i].n_docs)
        fail(where + "must be below the segment's " + str(segments[i].n_docs) + " documents, got " + str(c.ids[j]));
      if (j > 0 && c.ids[j] <= c.ids[j - 1])
        fail(where + "must be sorted ascending without repeats; pass numpy.unique(ids)");
    }
  }
  return out;
}

// The byte offset of each inverted list of a segment, checked against the file's size.
std::vector<std::int64_t> list_starts(const Segment& s, std::int64_t n_centroids, const std::string& where) {
  if (s.ivf_offsets == nullptr || (s.ivf == nullptr && s.ivf_bytes > 0))
    fail(where + "the inverted file (ivf_offsets, ivf) is required");
  std::vector<std::int64_t> starts;
  try {
    starts = ivf_list_starts(s.ivf_offsets, n_centroids, s.n_docs);
  } catch (const std::invalid_argument& e) {
    fail(where + e.what());
  }
  if (starts.back() != s.ivf_bytes)
    fail(where + "the inverted file holds " + str(s.ivf_bytes) + " bytes but its lists need " + str(starts.back()) +
         "; build both with build_ivf");
  return starts;
}

// Asks the OS to start reading [p, p + n) of a memory-mapped file. Over a cold page cache, stage
// (d)'s residuals otherwise arrive by one synchronous page fault after another (hundreds per
// query: 0.2-1.3 s for a first query at 1 M documents); hinted first, their reads overlap. (The
// small files, inverted lists and codes, are hinted whole when a segment is opened.) Only a hint:
// errors (memory that is not a file mapping) are ignored; resident pages cost a syscall.
void will_need(const void* p, std::int64_t n) {
#if defined(MADV_WILLNEED)
  static const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(p) + static_cast<std::uintptr_t>(n);
  if (n > 0) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_WILLNEED);
#else
  (void)p;
  (void)n;
#endif
}

// Hints the vectors stage (d) reads for the listed documents of a segment.
void will_need_vectors(const Codebook& cb, const Segment& s, const std::vector<std::int64_t>& ids) {
  const std::int64_t row_bytes =
      s.exact != nullptr ? s.exact->dim * static_cast<std::int64_t>(dtype_size(s.exact->dtype)) : cb.dim * cb.nbits / 8;
  const auto* base = static_cast<const std::uint8_t*>(s.exact != nullptr ? s.exact->data : s.residuals);
  for (std::int64_t d : ids) will_need(base + s.offsets[d] * row_bytes, (s.offsets[d + 1] - s.offsets[d]) * row_bytes);
}

// The centroids each query token probes (its nprobe best, ties to the lower index), ascending.
// A few probes per token (the default is 2) are kept sorted while the table is read once, row by
// row; more are selected per token (a strided pass over the table each).
std::vector<std::int64_t> probe(const float* s, std::int64_t nq, std::int64_t nq_pad, std::int64_t n_centroids,
                                std::int64_t nprobe) {
  std::vector<char> probed(static_cast<std::size_t>(n_centroids), 0);
  if (nprobe <= kFewProbes) {
    std::vector<float> top(static_cast<std::size_t>(nq * nprobe));
    std::vector<std::int64_t> best(static_cast<std::size_t>(nq * nprobe));
    std::vector<std::int64_t> count(static_cast<std::size_t>(nq), 0);
    for (std::int64_t c = 0; c < n_centroids; ++c) {
      const float* row = s + c * nq_pad;
      for (std::int64_t i = 0; i < nq; ++i) {
        float* t = top.data() + i * nprobe;
        std::int64_t* b = best.data() + i * nprobe;
        std::int64_t& k = count[i];
        if (k == nprobe && !ranks_before(row[i], c, t[k - 1], b[k - 1])) continue;
        std::int64_t at = k < nprobe ? k++ : nprobe - 1;
        for (; at > 0 && ranks_before(row[i], c, t[at - 1], b[at - 1]); --at) {
          t[at] = t[at - 1];
          b[at] = b[at - 1];
        }
        t[at] = row[i];
        b[at] = c;
      }
    }
    for (std::int64_t c : best) probed[c] = 1;
  }
  std::vector<std::int64_t> order(static_cast<std::size_t>(nprobe <= kFewProbes ? 0 : n_centroids));
  for (std::int64_t i = 0; i < nq && nprobe > kFewProbes; ++i) {
    for (std::int64_t c = 0; c < n_centroids; ++c) order[c] = c;
    std::nth_element(order.begin(), order.begin() + (nprobe - 1), order.end(), [&](std::int64_t a, std::int64_t b) {
      return ranks_before(s[a * nq_pad + i], a, s[b * nq_pad + i], b);
    });
    for (std::int64_t r = 0; r < nprobe; ++r) probed[order[r]] = 1;
  }
  std::vector<std::int64_t> out;
  for (std::int64_t c = 0; c < n_centroids; ++c)
    if (probed[c]) out.push_back(c);
  return out;
}

// Probed centroids' scores as bytes for the first, cheap ranking: row p (centroid probed[p]) holds
// round((S[c][i] - lo) * 255 / (hi - lo)) for query token i < nq over the probed rows' range
// [lo, hi], zero in padding lanes. The map is the same increasing one for every token, so a sum of
// per-token maxima of bytes ranks documents as the sum of the float maxima would, up to rounding.
std::vector<std::uint8_t> probed_bytes(const float* s, std::int64_t nq, std::int64_t nq_pad,
                                       const std::vector<std::int64_t>& probed, std::int64_t width) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (std::int64_t c : probed)
    for (std::int64_t i = 0; i < nq; ++i) {
      lo = std::min(lo, s[c * nq_pad + i]);
      hi = std::max(hi, s[c * nq_pad + i]);
    }
  const float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
  std::vector<std::uint8_t> out(probed.size() * static_cast<std::size_t>(width), 0);
  for (std::size_t p = 0; p < probed.size(); ++p)
    for (std::int64_t i = 0; i < nq; ++i)
      out[p * width + i] = static_cast<std::uint8_t>(std::lrint((s[probed[p] * nq_pad + i] - lo) * scale));
  return out;
}

// Stage (b) with PLAID's centroid pruning: the allowed documents in the probed centroids' lists,
// ascending, each scored by sum_i max over its probed centroids of the byte score of token i
// (tokens in unprobed centroids do not count, so this only orders candidates for stage (c)).
// Documents go in blocks whose rows of byte maxima stay in cache, one cursor per list; a row is
// written on its document's first hit, so `maxima` (a worker's, reused) is never cleared.
void gather_candidates(const Segment& s, const std::vector<std::int64_t>& starts,
                       const std::vector<std::int64_t>& probed, const std::uint8_t* bytes, std::int64_t width,
                       std::vector<std::uint8_t>& maxima, std::vector<std::uint32_t>& lists,
                       std::vector<std::int64_t>& ids, std::vector<float>& scores, const std::string& where) {
  // The probed lists, decoded back to back: list p is lists[list_at[p], list_at[p + 1]).
  std::vector<std::int64_t> list_at(probed.size() + 1, 0);
  for (std::size_t p = 0; p < probed.size(); ++p)
    list_at[p + 1] = list_at[p] + s.ivf_offsets[probed[p] + 1] - s.ivf_offsets[probed[p]];
  lists.resize(static_cast<std::size_t>(list_at.back()));
  for (std::size_t p = 0; p < probed.size(); ++p)
    if (!ef::decode(s.ivf + starts[probed[p]], list_at[p + 1] - list_at[p], ivf_universe(s.n_docs),
                    lists.data() + list_at[p]))
      fail(where + "the inverted list of centroid " + str(probed[p]) + " is damaged; rebuild it with build_ivf");
  const std::int64_t block_docs = std::max<std::int64_t>(64, kPruningBlockBytes / width / 64 * 64);
  if (maxima.size() < static_cast<std::size_t>(block_docs * width))
    maxima.resize(static_cast<std::size_t>(block_docs * width));
  std::vector<std::uint64_t> hit(static_cast<std::size_t>(ceil_div(std::min(block_docs, s.n_docs), 64)));
  std::vector<std::uint64_t> allowed;
  if (!s.allowed.all) {
    allowed.assign(static_cast<std::size_t>(ceil_div(s.n_docs, 64)), 0);
    for (std::int64_t j = 0; j < s.allowed.count; ++j)
      allowed[s.allowed.ids[j] >> 6] |= std::uint64_t(1) << (s.allowed.ids[j] & 63);
  }
  std::vector<std::int64_t> cursor(list_at.begin(), list_at.end() - 1);
  ids.clear();
  scores.clear();
  for (std::int64_t first = 0; first < s.n_docs; first += block_docs) {
    const std::int64_t last = std::min(first + block_docs, s.n_docs);
    std::fill(hit.begin(), hit.end(), 0);
    for (std::size_t p = 0; p < probed.size(); ++p) {
      const std::uint8_t* row = bytes + p * width;
      const std::int64_t end = list_at[p + 1];
      std::int64_t e = cursor[p];
      for (; e < end && lists[e] < last; ++e) {  // decoding checked: ascending, below n_docs
        const std::int64_t d = static_cast<std::int64_t>(lists[e]) - first;
        std::uint8_t* m = maxima.data() + d * width;
        const std::uint64_t bit = std::uint64_t(1) << (d & 63);
        if ((hit[d >> 6] & bit) == 0) {
          hit[d >> 6] |= bit;
          std::memcpy(m, row, static_cast<std::size_t>(width));
        } else {
          for (std::int64_t j = 0; j < width; ++j) m[j] = std::max(m[j], row[j]);
        }
      }
      cursor[p] = e;
    }
    for (std::size_t w = 0; w < hit.size(); ++w) {
      std::uint64_t bits = hit[w];
      if (!s.allowed.all) {
        // first is a multiple of 64, so block word w is segment word first / 64 + w
        bits &= allowed[static_cast<std::size_t>(first / 64) + w];
      }
      for (; bits != 0; bits &= bits - 1) {
        const std::int64_t d = static_cast<std::int64_t>(w * 64 + __builtin_ctzll(bits));
        const std::uint8_t* m = maxima.data() + d * width;
        std::uint32_t sum = 0;
        for (std::int64_t j = 0; j < width; ++j) sum += m[j];
        ids.push_back(first + d);
        scores.push_back(static_cast<float>(sum));  // rounding is monotone: the order holds
      }
    }
  }
}

// Stage (c): the best `keep` candidates by approximate score, ascending by id.
// A document's maximum over its tokens is the maximum over its distinct codes, so the kernel runs
// over those: a chunk's documents' distinct codes, decoded back to back.
std::vector<float> approx_scores(const Segment& s, const std::vector<std::int64_t>& cand, const float* scores_table,
                                 std::int64_t nq, std::int64_t nq_pad, std::int64_t n_centroids,
                                 const kernels::PlaidKernels& kern, int threads) {
  const std::int64_t n = static_cast<std::int64_t>(cand.size());
  std::vector<float> approx(cand.size());
  const DocCodeReader reader(s.codes, s.offsets, s.n_docs, n_centroids);
  const std::int64_t n_chunks = ceil_div(n, kApproxChunkDocs);
  std::vector<std::int64_t> local(static_cast<std::size_t>(kApproxChunkDocs));
  for (std::int64_t b = 0; b < kApproxChunkDocs; ++b) local[b] = b;
  parallel_for_chunks(n_chunks, threads, [&](std::int64_t c) {
    const std::int64_t begin = c * kApproxChunkDocs, count = std::min(kApproxChunkDocs, n - begin);
    std::vector<std::int64_t> offsets(static_cast<std::size_t>(count + 1), 0);
    for (std::int64_t b = 0; b < count; ++b) offsets[b + 1] = offsets[b] + reader.n_tokens(cand[begin + b]);
    std::vector<std::uint32_t> wide(static_cast<std::size_t>(offsets[count]));
    for (std::int64_t b = 0; b < count; ++b)
      offsets[b + 1] = offsets[b] + reader.distinct(cand[begin + b], wide.data() + offsets[b]);
    const std::vector<std::uint16_t> codes(wide.begin(), wide.begin() + offsets[count]);
    kern.approx_scores(scores_table, nq, nq_pad, codes.data(), offsets.data(), local.data(), count,
                       approx.data() + begin);
  });
  return approx;
}

// Keeps the `keep` candidates with the best approximate scores over all segments (ties to the
// lower position), each segment's survivors in ascending order.
void keep_best(const Segment* segments, std::vector<std::vector<std::int64_t>>& ids,
               const std::vector<std::vector<float>>& approx, std::int64_t keep) {
  struct Candidate {
    float score;
    std::int64_t position;
    std::size_t segment;
    std::int64_t local;
  };
  std::vector<Candidate> all;
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (std::size_t b = 0; b < ids[i].size(); ++b)
      all.push_back({approx[i][b], segments[i].first_pos + ids[i][b], i, ids[i][b]});
  std::nth_element(all.begin(), all.begin() + (keep - 1), all.end(), [](const Candidate& a, const Candidate& b) {
    return ranks_before(a.score, a.position, b.score, b.position);
  });
  for (auto& v : ids) v.clear();
  for (std::int64_t r = 0; r < keep; ++r) ids[all[r].segment].push_back(all[r].local);
  for (auto& v : ids) std::sort(v.begin(), v.end());
}

// Seconds since `start`, on the steady clock.
double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Stage (d): exact MaxSim of each listed document, on its exact token vectors when the segment
// has them, else from its codes and residuals: scored straight from them (plaid_residual.hpp)
// when `residual` is given, else decompressed to float32. decode_seconds accumulates the time
// spent decompressing, over all threads.
std::vector<float> exact_scores(const QueryMatrix& query, const Codebook& cb, const Decoder& decode, const Segment& s,
                                const std::vector<std::int64_t>& ids, const kernels::ResidualBook* residual,
                                int threads, double& decode_seconds) {
  const std::int64_t n = static_cast<std::int64_t>(ids.size());
  std::vector<float> out(ids.size());
  const kernels::ScoreFn kernel = active_kernel();
  const std::int64_t n_chunks = ceil_div(n, kExactChunkDocs);
  if (s.exact != nullptr) {
    parallel_for_chunks(n_chunks, threads, [&](std::int64_t c) {
      const std::int64_t begin = c * kExactChunkDocs, count = std::min(kExactChunkDocs, n - begin);
      kernel({&query, 1, s.exact, ids.data() + begin, 0, count, out.data() + begin, n});
    });
    return out;
  }
  // One scratch per worker, grown to the largest chunk it reads.
  struct Scratch {
    std::vector<float> rows;
    std::vector<std::uint16_t> codes;
    std::vector<std::uint32_t> distinct;
  };
  std::vector<Scratch> scratch(static_cast<std::size_t>(worker_count(n_chunks, threads)));
  std::vector<double> decode_time(scratch.size(), 0.0);
  const DocCodeReader reader(s.codes, s.offsets, s.n_docs, cb.n_centroids);
  const kernels::ResidualFn score_residuals = active_residual_scorer();
  const std::int64_t row_bytes = cb.dim * cb.nbits / 8;
  parallel_for_chunks_on_workers(n_chunks, threads, [&](int worker, std::int64_t c) {
    const std::int64_t begin = c * kExactChunkDocs, count = std::min(kExactChunkDocs, n - begin);
    std::vector<std::int64_t> offsets(static_cast<std::size_t>(count + 1), 0);
    std::vector<const std::uint8_t*> residuals(static_cast<std::size_t>(count));
    for (std::int64_t b = 0; b < count; ++b) {
      offsets[b + 1] = offsets[b] + reader.n_tokens(ids[begin + b]);
      residuals[b] = s.residuals + s.offsets[ids[begin + b]] * row_bytes;
    }
    Scratch& sc = scratch[worker];
    const std::size_t tokens = static_cast<std::size_t>(offsets[count]);
    if (sc.codes.size() < tokens) {
      sc.codes.resize(tokens);
      sc.distinct.resize(tokens);
    }
    for (std::int64_t b = 0; b < count; ++b)
      reader.tokens(ids[begin + b], sc.codes.data() + offsets[b], sc.distinct.data());
    if (residual != nullptr) {
      score_residuals({residual, &query, sc.codes.data(), residuals.data(), offsets.data(), count, out.data() + begin});
      return;
    }
    const auto started = std::chrono::steady_clock::now();
    sc.rows.resize(std::max(sc.rows.size(), tokens * static_cast<std::size_t>(cb.dim)));
    for (std::int64_t b = 0; b < count; ++b)
      decode(sc.codes.data() + offsets[b], residuals[b], offsets[b + 1] - offsets[b],
             sc.rows.data() + offsets[b] * cb.dim, s.offsets[ids[begin + b]]);
    decode_time[worker] += since(started);
    const DocMatrix docs{sc.rows.data(), DType::f32, offsets[count], cb.dim, offsets.data(), count};
    kernel({&query, 1, &docs, nullptr, 0, count, out.data() + begin, n});
  });
  for (double t : decode_time) decode_seconds += t;
  return out;
}

}  // namespace

TopK search(const QueryMatrix& query, const Codebook& cb, const Segment* segments, std::int64_t n_segments,
            const SearchParams& p, int threads, SearchStats* stats, const CompleteFn& complete,
            std::vector<float>* completed) {
  const BusyCall busy;
  SearchStats local;
  SearchStats& st = stats != nullptr ? *stats : local;
  auto clock = std::chrono::steady_clock::now();
  const auto lap = [&](double& seconds) {
    const auto now = std::chrono::steady_clock::now();
    seconds += std::chrono::duration<double>(now - clock).count();
    clock = now;
  };
  validate(cb);
  if (cb.weights == nullptr) fail("search needs the codebook's weights");
  validate_query(query, cb.dim);
  if (p.k < 1) fail("k must be at least 1, got " + str(p.k));
  if (p.nprobe < 1) fail("nprobe must be at least 1, got " + str(p.nprobe));
  if (p.ncandidates < 1) fail("ncandidates must be at least 1, got " + str(p.ncandidates));
  if (n_segments < 0 || (n_segments > 0 && segments == nullptr)) fail("invalid segment list");
  for (std::int64_t i = 0; i < n_segments; ++i) validate_segment(query, cb, segments[i], i);
  threads = resolve_threads(threads);
  const kernels::PlaidKernels& kern = active_plaid_kernels();
  const Decoder decode(cb);
  lap(st.check_s);

  // Stage (a), once for all segments: S transposed, n_centroids x nq_pad, padding lanes zero.
  // Probing needs it, and so does scoring from the residuals (exhaustive search too).
  const std::int64_t nq = query.n_tokens, nq_pad = ceil_div(nq, 16) * 16;
  const bool from_residuals = !p.decompress && std::any_of(segments, segments + n_segments,
                                                           [](const Segment& s) { return s.exact == nullptr; });
  AlignedBuffer<float> table;
  std::vector<std::int64_t> probed;
  if (!p.exhaustive || from_residuals) {
    table.assign_zero(static_cast<std::size_t>(cb.n_centroids * nq_pad));
    parallel_for_chunks(ceil_div(cb.n_centroids, kCentroidChunk), threads, [&](std::int64_t c) {
      const std::int64_t begin = c * kCentroidChunk, count = std::min(kCentroidChunk, cb.n_centroids - begin);
      kern.centroid_scores(query, cb.centroids + begin * cb.dim, count, nq_pad, table.data() + begin * nq_pad);
    });
  }
  if (!p.exhaustive) {
    probed = probe(table.data(), nq, nq_pad, cb.n_centroids, std::min(p.nprobe, cb.n_centroids));
    st.probed = static_cast<std::int64_t>(probed.size());
  }
  lap(st.probe_s);

  // Stages (b) and (c), each cutting the candidates over all segments to a budget, so the cost
  // of the later stages does not grow with the number of segments: (b) ranks by the probed
  // centroids' byte scores and keeps kPrunedPerCandidate * keep, (c) by the approximate score
  // over every token of a document and keeps `keep`.
  const std::int64_t keep = std::max(p.ncandidates, p.k);
  std::vector<std::vector<std::int64_t>> ids(static_cast<std::size_t>(n_segments));
  std::int64_t total = 0;
  if (!p.exhaustive) {
    const std::int64_t width = ceil_div(nq, 32) * 32;
    const std::vector<std::uint8_t> bytes = probed_bytes(table.data(), nq, nq_pad, probed, width);
    std::vector<std::vector<float>> pruned(static_cast<std::size_t>(n_segments));
    const int workers = worker_count(n_segments, threads);
    std::vector<std::vector<std::uint8_t>> maxima(static_cast<std::size_t>(workers));
    std::vector<std::vector<std::uint32_t>> lists(static_cast<std::size_t>(workers));
    parallel_for_chunks_on_workers(n_segments, threads, [&](int worker, std::int64_t i) {
      const std::string where = "segment " + str(i) + ": ";
      gather_candidates(segments[i], list_starts(segments[i], cb.n_centroids, where), probed, bytes.data(), width,
                        maxima[worker], lists[worker], ids[i], pruned[i], where);
    });
    for (const auto& v : ids) total += static_cast<std::int64_t>(v.size());
    st.gathered = total;
    const std::int64_t first_cut = kPrunedPerCandidate * keep;
    if (total > first_cut) {
      keep_best(segments, ids, pruned, first_cut);
      total = first_cut;
    }
  } else {
    for (std::int64_t i = 0; i < n_segments; ++i) {
      const Segment& s = segments[i];
      if (s.allowed.all) {
        ids[i].resize(static_cast<std::size_t>(s.n_docs));
        for (std::int64_t d = 0; d < s.n_docs; ++d) ids[i][d] = d;
      } else {
        ids[i].assign(s.allowed.ids, s.allowed.ids + s.allowed.count);
      }
    }
  }
  st.pruned = total;
  lap(st.gather_s);
  if (!p.exhaustive && total > keep) {
    std::vector<std::vector<float>> approx(static_cast<std::size_t>(n_segments));
    for (std::int64_t i = 0; i < n_segments; ++i)
      approx[i] = approx_scores(segments[i], ids[i], table.data(), nq, nq_pad, cb.n_centroids, kern, threads);
    keep_best(segments, ids, approx, keep);
  }
  lap(st.approx_s);

  // Stage (d) over the kept candidates and the documents to complete (their union, ascending),
  // its reads hinted for every segment first: rows without an exact copy scored from their
  // residuals, or decompressed to float32 (exact scores of the decoded rows).
  const std::vector<DocSelection> extra = to_complete(complete, ids, segments, n_segments);
  std::vector<std::vector<std::int64_t>> scored(static_cast<std::size_t>(n_segments));
  for (std::int64_t i = 0; i < n_segments; ++i) {
    const DocSelection& more = extra[i];
    std::set_union(ids[i].begin(), ids[i].end(), more.ids, more.ids + more.count, std::back_inserter(scored[i]));
    will_need_vectors(cb, segments[i], scored[i]);
  }
  std::optional<kernels::ResidualTables> residual;
  if (from_residuals)
    residual.emplace(cb.centroids, cb.n_centroids, cb.dim, cb.nbits, cb.weights, cb.normalize, table.data(), nq_pad);
  std::vector<float> scores;
  std::vector<std::int64_t> positions;
  if (completed != nullptr) completed->clear();
  st.scored = 0;
  for (std::int64_t i = 0; i < n_segments; ++i) {
    st.scored += static_cast<std::int64_t>(scored[i].size());
    const std::vector<float> exact = exact_scores(query, cb, decode, segments[i], scored[i],
                                                  residual ? &residual->book : nullptr, threads, st.decode_s);
    const DocSelection& more = extra[i];
    for (std::size_t b = 0, kept = 0, extra = 0; b < scored[i].size(); ++b) {
      if (kept < ids[i].size() && ids[i][kept] == scored[i][b]) {
        scores.push_back(exact[b]);
        positions.push_back(segments[i].first_pos + ids[i][kept++]);
      }
      if (extra < static_cast<std::size_t>(more.count) && more.ids[extra] == scored[i][b]) {
        if (completed != nullptr) completed->push_back(exact[b]);
        ++extra;
      }
    }
  }

  const std::int64_t n = static_cast<std::int64_t>(scores.size()), kk = std::min(p.k, n);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) order[r] = r;
  std::partial_sort(order.begin(), order.begin() + kk, order.end(), [&](std::int64_t a, std::int64_t b) {
    return ranks_before(scores[a], positions[a], scores[b], positions[b]);
  });
  TopK top;
  for (std::int64_t r = 0; r < kk; ++r) {
    top.ids.push_back(positions[order[r]]);
    top.scores.push_back(scores[order[r]]);
  }
  lap(st.exact_s);
  return top;
}

}  // namespace colmax::plaid
