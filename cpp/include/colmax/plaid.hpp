// The compressed index (PLAID / ColBERTv2): k-means assignment, the residual codec, the inverted
// file from centroids to documents, and the staged search over compressed segments.
//
// A token vector x is stored as the code c of its nearest centroid plus its residual x - C[c]
// quantized to nbits per dimension:
//   bucket_j = #{ i : cutoffs[i] <= r_j }     (numpy.searchsorted(cutoffs, r, side="right"))
// so a value equal to a cutoff goes to the upper bucket. It decodes as
//   x'_j = C[c]_j + weights[bucket_j],  then x' /= ||x'|| when normalize (a zero row stays zero).
// Packing is LSB-first: dimension j occupies bits [j*nbits, j*nbits + nbits) of its row's
// dim*nbits/8 bytes, i.e. byte j*nbits/8 at shift (j*nbits) % 8.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "colmax/maxsim.hpp"

namespace colmax::plaid {

// The nearest centroid by inner product of every row of x (n x dim) among n_centroids rows
// (at most 2^24): codes[i] = argmax_c <x_i, C_c>, ties to the lower index; best_scores (may be
// null) receives the maximum. Inputs must be finite. Results do not depend on the thread count.
void assign(const float* x, std::int64_t n, std::int64_t dim, const float* centroids, std::int64_t n_centroids,
            std::int32_t* codes, float* best_scores, int threads = 0);

// Approximate assign for large codebooks. The centroids are grouped by a few Lloyd steps over
// the centroids themselves (about sqrt(n_centroids) groups, seeded at evenly spaced centroids;
// spherical when every centroid has unit length); a row scores the group means and is assigned to
// the best centroid in its probe_groups best groups (ties to the lower index), with best_scores
// its score. Costs about (groups + probe_groups * n_centroids / groups) / n_centroids of the
// exact assign's arithmetic. probe_groups >= groups is exact. Results do not depend on the thread
// count.
void assign_grouped(const float* x, std::int64_t n, std::int64_t dim, const float* centroids, std::int64_t n_centroids,
                    std::int64_t probe_groups, std::int32_t* codes, float* best_scores, int threads = 0);

// Centroids and quantizer. cutoffs (2^nbits - 1, non-decreasing) are needed only to compress,
// weights (2^nbits, the decoded value of each bucket) only to decompress and search; either may
// be null where it is not needed. Centroids are trusted to be finite.
struct Codebook {
  const float* centroids = nullptr;  // n_centroids x dim, row-major
  std::int64_t n_centroids = 0;      // 1 .. 65536: codes are uint16
  std::int64_t dim = 0;
  int nbits = 0;  // 1, 2, 4 or 8
  const float* cutoffs = nullptr;
  const float* weights = nullptr;
  bool normalize = false;
};

// Bytes per compressed row: dim * nbits / 8. Throws std::invalid_argument unless nbits is 1, 2,
// 4 or 8 and dim * nbits is a multiple of 8.
std::int64_t packed_bytes(std::int64_t dim, int nbits);

// Checks the codebook's shape and values (finite, sorted cutoffs; finite weights); throws
// std::invalid_argument naming the fix.
void validate(const Codebook& cb);

// Residual-quantizes n rows of x (finite) against their codes into out (n x packed_bytes).
void compress(const Codebook& cb, const float* x, const std::uint16_t* codes, std::int64_t n, std::uint8_t* out,
              int threads = 0);

// Decodes n compressed rows into out (n x dim float32).
void decompress(const Codebook& cb, const std::uint16_t* codes, const std::uint8_t* residuals, std::int64_t n,
                float* out, int threads = 0);

// A document's centroid codes, stored per document. Its tokens are stored ordered by code (a
// stable sort: MaxSim does not depend on token order), so its codes form runs, and its blob is
//   ceil(n_tokens / 8) bytes of run starts (bit t, LSB-first, set where token t's code differs
//   from token t - 1's; bit 0 set; padding bits zero), then
//   its m distinct codes (m = the set bits), ascending, Elias-Fano coded below n_centroids.
// About 0.8 bytes per token where a 100-token document has 55 distinct codes of 16,384, against 2
// for a uint16 per token. Blobs lie back to back; document d's is bytes[offsets[d], offsets[d+1]).
struct DocCodes {
  const std::uint8_t* bytes = nullptr;
  std::int64_t n_bytes = 0;
  const std::int64_t* offsets = nullptr;  // n_docs + 1 entries
};

// What encode_doc_codes writes: the blobs, their offsets, and the token order (stored token t of
// the segment is input token order[t]; each document's tokens stay within it).
struct EncodedDocCodes {
  std::vector<std::int64_t> order;
  std::vector<std::uint8_t> bytes;
  std::vector<std::int64_t> offsets;
};

// codes holds doc_offsets[n_docs] tokens (one per input token, in input order).
EncodedDocCodes encode_doc_codes(const std::uint16_t* codes, const std::int64_t* doc_offsets, std::int64_t n_docs,
                                 std::int64_t n_centroids);

// The code of every stored token of documents docs[0 .. count), document after document, into
// out. Throws std::invalid_argument naming the fix when a blob is damaged or an id is out of range.
void token_codes(const DocCodes& codes, const std::int64_t* doc_offsets, std::int64_t n_docs, std::int64_t n_centroids,
                 const std::int64_t* docs, std::int64_t count, std::uint16_t* out);

// The inverted file: for each centroid, the ascending local ids of the documents holding it,
// Elias-Fano coded below n_docs. List c holds offsets[c + 1] - offsets[c] documents and lies at
// byte ivf_list_starts(offsets, ...)[c] of `bytes`, the lists back to back.
struct Ivf {
  std::vector<std::int64_t> offsets;  // n_centroids + 1 entries, from 0
  std::vector<std::uint8_t> bytes;
};

// Built from the documents' stored codes; n_docs must be below 2^32.
Ivf build_ivf(const DocCodes& codes, const std::int64_t* doc_offsets, std::int64_t n_docs, std::int64_t n_centroids);

// The byte offset of each list (n_centroids + 1 entries: the last is the inverted file's size).
// Throws std::invalid_argument unless offsets start at 0 and never decrease.
std::vector<std::int64_t> ivf_list_starts(const std::int64_t* offsets, std::int64_t n_centroids, std::int64_t n_docs);

// One compressed segment of the index, not owned.
struct Segment {
  DocCodes codes;                           // per document, from encode_doc_codes
  const std::uint8_t* residuals = nullptr;  // n_tokens x packed_bytes, in stored token order
  const std::int64_t* offsets = nullptr;    // doc i = tokens offsets[i] .. offsets[i+1]
  std::int64_t n_docs = 0;
  const std::int64_t* ivf_offsets = nullptr;  // from build_ivf: n_centroids + 1 entries
  const std::uint8_t* ivf = nullptr;
  std::int64_t ivf_bytes = 0;
  DocSelection allowed;              // searchable documents: sorted unique local ids, or all
  const DocMatrix* exact = nullptr;  // optional uncompressed copy of the same documents for the final scores
  std::int64_t first_pos = 0;        // added to local ids in the result
};

// Documents scored in stage (d) besides the search's own candidates and returned apart: per
// segment, sorted unique local ids (allowed or not), which the callee keeps alive until search
// returns. Called once, after stage (c), with the candidates stage (d) is about to score (per
// segment, sorted local ids): a hybrid search's keyword candidates get their MaxSim from the
// tables stage (a) built, instead of in a second search building them again, and the caller
// can start its own work on the candidates (their BM25) while stage (d) runs.
using CompleteFn = std::function<std::vector<DocSelection>(const std::vector<std::vector<std::int64_t>>& candidates)>;

struct SearchParams {
  std::int64_t k;
  std::int64_t nprobe;       // centroids probed per query token (clipped to n_centroids)
  std::int64_t ncandidates;  // documents kept for exact scoring, over all segments; at least 1, raised to k
  bool exhaustive = false;   // score every allowed document exactly, skipping the index
  bool decompress = false;   // stage (d) on float32 decompressed rows instead of from the residuals
};

// PLAID search. (a) Centroid scores S = Q C^T once per call; each query token probes its
// nprobe best centroids (ties to the lower index). (b) Per segment, the candidates are the
// allowed documents in the probed centroids' lists; beyond 4 * ncandidates in all segments, the
// best 4 * ncandidates are kept by sum_i max over the document's probed centroids of S[c][i],
// scaled to bytes over the probed scores' range (tokens in unprobed centroids do not count).
// (c) Beyond ncandidates, the survivors are ranked by the approximate score
// sum_i max_{t in d} S[code_t][i] and the best ncandidates kept. Both cuts are over all segments,
// ties to the lower position. (d) The kept documents are scored by MaxSim on `exact` when given,
// else straight from their codes and residuals (the int8 scoring of src/plaid_residual.hpp, which
// decompresses nothing: stage (a)'s scores plus int8 dot products with the residuals' weights,
// over the rows' norms). Result: the best k
// over all segments, score descending, ties to the lower position first_pos + local id; k is
// clipped to the documents scored. exhaustive scores every allowed document in stage (d).
// decompress scores rows without `exact` on their float32 decompressed vectors (exact MaxSim of
// the decoded rows) instead of from the residuals. Results do not depend on the thread count.
// With `complete`, `completed` receives the stage (d) score of each document it lists, segment
// after segment (the scores an exhaustive search with the same `decompress` gives them); they
// take no part in the ranking unless stage (c) kept them too.
//
// Where one search spent its time (wall clock, per stage) and how many documents each stage
// kept: the profile of docs/plaid.md.
struct SearchStats {
  double check_s = 0;  // validating the inputs
  double probe_s = 0, gather_s = 0, approx_s = 0, exact_s = 0;
  double decode_s = 0;        // of exact_s: decompressing, summed over threads
  std::int64_t probed = 0;    // centroids probed by any query token
  std::int64_t gathered = 0;  // documents in the probed lists (allowed ones)
  std::int64_t pruned = 0;    // left after stage (b)'s cut
  std::int64_t scored = 0;    // scored exactly in stage (d)
};

TopK search(const QueryMatrix& query, const Codebook& cb, const Segment* segments, std::int64_t n_segments,
            const SearchParams& params, int threads = 0, SearchStats* stats = nullptr, const CompleteFn& complete = {},
            std::vector<float>* completed = nullptr);

}  // namespace colmax::plaid
