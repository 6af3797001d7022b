// The documents' stored codes (per document: runs of equal codes and the distinct codes) and the
// inverted file built from them, from each centroid to the documents holding it.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "colmax/elias_fano.hpp"
#include "colmax/plaid.hpp"
#include "plaid_common.hpp"

namespace colmax::plaid {

using detail::ceil_div, detail::DocCodeReader, detail::fail, detail::ivf_universe, detail::require_code, detail::str;

namespace {

void validate_doc_offsets(const std::int64_t* doc_offsets, std::int64_t n_docs, std::int64_t n_centroids) {
  if (n_centroids < 1 || n_centroids > 65536)
    fail("need 1 to 65536 centroids (codes are uint16), got " + str(n_centroids));
  if (n_docs < 0) fail("negative document count");
  if (doc_offsets == nullptr) fail("null doc_offsets");
  if (doc_offsets[0] != 0) fail("doc_offsets must start at 0, got " + str(doc_offsets[0]));
  for (std::int64_t d = 0; d < n_docs; ++d)
    if (doc_offsets[d + 1] < doc_offsets[d]) fail("doc_offsets must never decrease (entry " + str(d + 1) + ")");
}

}  // namespace

EncodedDocCodes encode_doc_codes(const std::uint16_t* codes, const std::int64_t* doc_offsets, std::int64_t n_docs,
                                 std::int64_t n_centroids) {
  validate_doc_offsets(doc_offsets, n_docs, n_centroids);
  for (std::int64_t t = 0; t < doc_offsets[n_docs]; ++t) require_code(codes[t], n_centroids, t);
  EncodedDocCodes out;
  out.order.resize(static_cast<std::size_t>(doc_offsets[n_docs]));
  out.offsets.assign(1, 0);
  std::vector<std::uint32_t> distinct;
  for (std::int64_t d = 0; d < n_docs; ++d) {
    const std::int64_t begin = doc_offsets[d], n = doc_offsets[d + 1] - begin;
    std::int64_t* order = out.order.data() + begin;
    for (std::int64_t t = 0; t < n; ++t) order[t] = begin + t;
    std::stable_sort(order, order + n, [&](std::int64_t a, std::int64_t b) { return codes[a] < codes[b]; });
    const std::size_t at = out.bytes.size();
    out.bytes.resize(at + static_cast<std::size_t>(ceil_div(n, 8)), 0);
    distinct.clear();
    for (std::int64_t t = 0; t < n; ++t)
      if (t == 0 || codes[order[t]] != codes[order[t - 1]]) {
        out.bytes[at + (t >> 3)] |= static_cast<std::uint8_t>(1u << (t & 7));
        distinct.push_back(codes[order[t]]);
      }
    const std::int64_t m = static_cast<std::int64_t>(distinct.size());
    const std::size_t list = out.bytes.size();
    out.bytes.resize(list + static_cast<std::size_t>(ef::encoded_bytes(m, n_centroids)));
    ef::encode(distinct.data(), m, n_centroids, out.bytes.data() + list);
    out.offsets.push_back(static_cast<std::int64_t>(out.bytes.size()));
  }
  return out;
}

void token_codes(const DocCodes& codes, const std::int64_t* doc_offsets, std::int64_t n_docs, std::int64_t n_centroids,
                 const std::int64_t* docs, std::int64_t count, std::uint16_t* out) {
  validate_doc_offsets(doc_offsets, n_docs, n_centroids);
  if (codes.offsets == nullptr || (codes.bytes == nullptr && codes.n_bytes > 0)) fail("null document codes");
  const DocCodeReader reader(codes, doc_offsets, n_docs, n_centroids);
  std::vector<std::uint32_t> distinct;
  for (std::int64_t b = 0; b < count; ++b) {
    if (docs[b] < 0 || docs[b] >= n_docs)
      fail("document " + str(docs[b]) + " is out of range: the segment has " + str(n_docs));
    distinct.resize(static_cast<std::size_t>(reader.n_tokens(docs[b])));
    reader.tokens(docs[b], out, distinct.data());
    out += reader.n_tokens(docs[b]);
  }
}

Ivf build_ivf(const DocCodes& codes, const std::int64_t* doc_offsets, std::int64_t n_docs, std::int64_t n_centroids) {
  validate_doc_offsets(doc_offsets, n_docs, n_centroids);
  if (n_docs > std::int64_t(std::numeric_limits<std::uint32_t>::max()))
    fail("a segment holds 0 to 2^32 - 1 documents (ids are uint32), got " + str(n_docs) + "; split it");
  if (codes.offsets == nullptr || (codes.bytes == nullptr && codes.n_bytes > 0)) fail("null document codes");
  const DocCodeReader reader(codes, doc_offsets, n_docs, n_centroids);

  // Two passes over the documents' distinct codes, count then fill.
  std::vector<std::uint32_t> distinct;
  auto each_pair = [&](auto&& visit) {
    for (std::int64_t d = 0; d < n_docs; ++d) {
      distinct.resize(static_cast<std::size_t>(std::max<std::int64_t>(reader.n_tokens(d), 1)));
      const std::int64_t m = reader.distinct(d, distinct.data());
      for (std::int64_t j = 0; j < m; ++j) visit(distinct[j], d);
    }
  };
  Ivf ivf;
  ivf.offsets.assign(static_cast<std::size_t>(n_centroids + 1), 0);
  each_pair([&](std::uint32_t c, std::int64_t) { ++ivf.offsets[c + 1]; });
  for (std::int64_t c = 0; c < n_centroids; ++c) ivf.offsets[c + 1] += ivf.offsets[c];
  std::vector<std::uint32_t> docs(static_cast<std::size_t>(ivf.offsets[n_centroids]));
  std::vector<std::int64_t> next(ivf.offsets.begin(), ivf.offsets.end() - 1);
  each_pair([&](std::uint32_t c, std::int64_t d) { docs[next[c]++] = static_cast<std::uint32_t>(d); });

  const std::vector<std::int64_t> starts = ivf_list_starts(ivf.offsets.data(), n_centroids, n_docs);
  ivf.bytes.resize(static_cast<std::size_t>(starts.back()));
  for (std::int64_t c = 0; c < n_centroids; ++c)
    ef::encode(docs.data() + ivf.offsets[c], ivf.offsets[c + 1] - ivf.offsets[c], ivf_universe(n_docs),
               ivf.bytes.data() + starts[c]);
  return ivf;
}

std::vector<std::int64_t> ivf_list_starts(const std::int64_t* offsets, std::int64_t n_centroids, std::int64_t n_docs) {
  if (offsets == nullptr) fail("null ivf_offsets");
  if (offsets[0] != 0) fail("ivf_offsets must start at 0; build them with build_ivf");
  std::vector<std::int64_t> starts(static_cast<std::size_t>(n_centroids + 1), 0);
  for (std::int64_t c = 0; c < n_centroids; ++c) {
    const std::int64_t count = offsets[c + 1] - offsets[c];
    if (count < 0 || count > n_docs)
      fail("ivf_offsets entry " + str(c + 1) + " is out of order or beyond the segment's " + str(n_docs) +
           " documents; build them with build_ivf");
    starts[c + 1] = starts[c] + ef::encoded_bytes(count, ivf_universe(n_docs));
  }
  return starts;
}

}  // namespace colmax::plaid
