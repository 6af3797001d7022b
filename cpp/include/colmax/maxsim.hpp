// MaxSim, the late-interaction score, over ragged documents stored in one matrix.
//
//   score(q, d) = sum_i  max_{j in d}  <q_i, d_j>
//
// q is a query's token matrix (n_q x dim, float32); document d owns rows offsets[d] ..
// offsets[d+1] of one row-major token matrix shared by all documents. Nothing is padded, so
// the score is exact even when every similarity of a query token is negative. A document
// with no tokens scores -infinity (the max over an empty set).
#pragma once

#include <cstdint>
#include <vector>

namespace colmax {

// How document token values are stored. Queries are always float32.
enum class DType : std::uint8_t {
  f32,   // IEEE float32
  f16,   // IEEE binary16, widened to float32 in registers
  bf16,  // bfloat16 (upper half of a float32), stored as uint16
  i8,    // int8 with a float32 scale per row (DocMatrix::scales): the row is scale * values. Queries
         // are quantized per token and scored in integers (colmax/quantize.hpp)
};

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

// A query: n_tokens x dim float32, row-major, not owned.
struct QueryMatrix {
  const float* data = nullptr;
  std::int64_t n_tokens = 0;
  std::int64_t dim = 0;
};

// All documents: one row-major token matrix plus n_docs + 1 row offsets, not owned.
struct DocMatrix {
  const void* data = nullptr;
  DType dtype = DType::f32;
  std::int64_t n_rows = 0;
  std::int64_t dim = 0;
  const std::int64_t* offsets = nullptr;
  std::int64_t n_docs = 0;
  const float* scales = nullptr;  // i8 only: n_rows scales, one per row
};

// A subset of documents to score, by index; {nullptr, 0} with all = true means every document.
struct DocSelection {
  const std::int64_t* ids = nullptr;
  std::int64_t count = 0;
  bool all = true;

  static DocSelection everything() { return {}; }
  static DocSelection subset(const std::int64_t* ids, std::int64_t count) { return {ids, count, false}; }
};

// Checks every structural invariant the kernels rely on; throws std::invalid_argument with a
// message that names the fix. All entry points below call it, so kernels trust their input.
// Document values (and int8 scales) are not read: they must be finite, as documented.
void validate(const QueryMatrix& query, const DocMatrix& docs, const DocSelection& selection);

// Scores of the selected documents, in selection order (out has selection size, or n_docs).
// threads <= 0 means one per available CPU, less the threads that other calls of this process
// are running at the time (so concurrent calls share the CPUs). Results do not depend on the
// thread count.
void maxsim(const QueryMatrix& query, const DocMatrix& docs, const DocSelection& selection, float* out,
            int threads = 0);

// Several queries in one pass over the documents: out is n_queries x n_selected, row-major.
void maxsim_batch(const QueryMatrix* queries, std::int64_t n_queries, const DocMatrix& docs,
                  const DocSelection& selection, float* out, int threads = 0);

struct TopK {
  std::vector<std::int64_t> ids;  // document indices, best first
  std::vector<float> scores;
};

// The k best documents (k is clipped to the number selected), by score descending, ties by
// lower document index; NaN scores rank below every number.
TopK maxsim_topk(const QueryMatrix& query, const DocMatrix& docs, std::int64_t k, const DocSelection& selection,
                 int threads = 0);

// The CPUs this process may run on: the threads of a call that passes threads <= 0 while no other
// call runs.
int default_threads();

}  // namespace colmax
