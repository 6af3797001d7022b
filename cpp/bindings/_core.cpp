// pybind11 layer: check numpy inputs, release the GIL, call the core, wrap the results.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "colmax/isa.hpp"
#include "colmax/maxsim.hpp"
#include "colmax/peak.hpp"
#include "colmax/plaid.hpp"
#include "colmax/quantize.hpp"

namespace py = pybind11;
using colmax::DType;

namespace {

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

py::array as_array(const py::handle& obj, const char* name, const char* dtype = "float32") {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + " must be a numpy array, got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>() +
                         "; wrap it with numpy.asarray(..., dtype=numpy." + dtype + ")");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  // The core reads raw memory in this machine's byte order: a byte-swapped array (dtype '>f4' on
  // x86) would be scored as garbage, not refused.
  if (!a.dtype().attr("isnative").cast<bool>())
    throw py::type_error(std::string(name) + " has non-native byte order (" + py::str(a.dtype()).cast<std::string>() +
                         "); convert with " + name + ".astype(" + name + ".dtype.newbyteorder('='))");
  return a;
}

void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous (row-major); pass numpy.ascontiguousarray(" +
                          name + ")");
}

void require_ndim(const py::array& a, py::ssize_t ndim, const char* name, const char* shape) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D with shape " + shape + ", got " +
                          std::to_string(a.ndim()) + "-D");
}

colmax::QueryMatrix query_matrix(const py::array& q, const char* name = "query") {
  if (q.dtype().kind() != 'f' || q.itemsize() != 4)
    throw py::type_error(std::string(name) + " must be float32, got " + dtype_str(q) + "; convert with " + name +
                         ".astype(numpy.float32)");
  require_ndim(q, 2, name, "(n_query_tokens, dim)");
  require_c_contiguous(q, name);
  return {static_cast<const float*>(q.data()), q.shape(0), q.shape(1)};
}

DType storage_dtype(const py::array& a, const std::string& name = "doc_tokens") {
  const char kind = a.dtype().kind();
  if (kind == 'f' && a.itemsize() == 4) return DType::f32;
  if (kind == 'f' && a.itemsize() == 2) return DType::f16;
  if (kind == 'u' && a.itemsize() == 2) return DType::bf16;
  if (kind == 'i' && a.itemsize() == 1) return DType::i8;
  throw py::type_error(name + " must be float32, float16, uint16 holding bfloat16 bits, or int8 with scales, got " +
                       dtype_str(a) + "; convert with " + name + ".astype(numpy.float32), colmax.to_bfloat16(" + name +
                       ") or colmax.quantize_int8(" + name + ")");
}

// The per-row scales of int8 token rows: required for them, refused for any other dtype.
const float* row_scales(DType dtype, const py::array& tokens, const py::object& scales, const std::string& name,
                        const std::string& scales_name, std::vector<py::array>& keep_alive) {
  if (dtype != DType::i8) {
    if (!scales.is_none())
      throw py::value_error(scales_name + " applies to int8 " + name + " only (these are " + dtype_str(tokens) +
                            "): drop it, or quantize the vectors with colmax.quantize_int8");
    return nullptr;
  }
  if (scales.is_none())
    throw py::type_error(name + " is int8: pass " + scales_name +
                         "= (float32, one scale per row), as colmax.quantize_int8 returns with the values");
  const py::array a = as_array(scales, scales_name.c_str());
  if (a.dtype().kind() != 'f' || a.itemsize() != 4)
    throw py::type_error(scales_name + " must be float32, got " + dtype_str(a) + "; convert with numpy.asarray(" +
                         scales_name + ", dtype=numpy.float32)");
  require_ndim(a, 1, scales_name.c_str(), "(n_rows,)");
  require_c_contiguous(a, scales_name.c_str());
  if (a.shape(0) != tokens.shape(0))
    throw py::value_error(scales_name + " must have one entry per row of " + name + " (" +
                          std::to_string(tokens.shape(0)) + "), got " + std::to_string(a.shape(0)));
  keep_alive.push_back(a);
  return static_cast<const float*>(a.data());
}

colmax::DocMatrix doc_matrix(const py::array& tokens, const py::array& offsets, const py::object& scales,
                             std::vector<py::array>& keep_alive) {
  const DType dtype = storage_dtype(tokens);
  require_ndim(tokens, 2, "doc_tokens", "(total_tokens, dim)");
  require_c_contiguous(tokens, "doc_tokens");
  const float* scale_data = row_scales(dtype, tokens, scales, "doc_tokens", "doc_scales", keep_alive);
  if (offsets.dtype().kind() != 'i' || offsets.itemsize() != 8)
    throw py::type_error("doc_offsets must be int64, got " + dtype_str(offsets) +
                         "; convert with doc_offsets.astype(numpy.int64)");
  require_ndim(offsets, 1, "doc_offsets", "(n_docs + 1,)");
  require_c_contiguous(offsets, "doc_offsets");
  if (offsets.shape(0) < 1) throw py::value_error("doc_offsets needs n_docs + 1 entries (at least [0])");
  return {tokens.data(),
          dtype,
          tokens.shape(0),
          tokens.shape(1),
          static_cast<const std::int64_t*>(offsets.data()),
          offsets.shape(0) - 1,
          scale_data};
}

colmax::DocSelection selection(const py::object& candidates) {
  if (candidates.is_none()) return colmax::DocSelection::everything();
  const py::array c = as_array(candidates, "candidates");
  if (c.dtype().kind() != 'i' || c.itemsize() != 8)
    throw py::type_error("candidates must be int64 document indices, got " + dtype_str(c) +
                         "; convert with numpy.asarray(candidates, dtype=numpy.int64)");
  require_ndim(c, 1, "candidates", "(n_candidates,)");
  require_c_contiguous(c, "candidates");
  return colmax::DocSelection::subset(static_cast<const std::int64_t*>(c.data()), c.shape(0));
}

int thread_count(const py::object& threads) {
  if (threads.is_none()) return 0;
  // Any integer (numpy's too, through __index__), but not a bool, a float or a string.
  PyObject* index = py::isinstance<py::bool_>(threads) ? nullptr : PyNumber_Index(threads.ptr());
  if (index == nullptr) {
    PyErr_Clear();
    throw py::type_error("threads must be an int (or None for one per CPU), got " +
                         py::str(py::type::of(threads).attr("__name__")).cast<std::string>());
  }
  int overflow = 0;
  const long long n = PyLong_AsLongLongAndOverflow(index, &overflow);
  Py_DECREF(index);
  if (overflow != 0 || n > std::numeric_limits<int>::max())
    throw py::value_error("threads is too large: pass at most the number of CPUs, or None");
  if (n < 1) throw py::value_error("threads must be at least 1 (or None for one per CPU), got " + std::to_string(n));
  return static_cast<int>(n);
}

std::int64_t n_selected(const colmax::DocMatrix& docs, const colmax::DocSelection& sel) {
  return sel.all ? docs.n_docs : sel.count;
}

// One query against the documents, checked; the arrays stay referenced while the GIL is released.
struct QueryCall {
  py::array query_array, tokens_array, offsets_array, candidates_array;
  std::vector<py::array> scales_array;
  colmax::QueryMatrix query;
  colmax::DocMatrix docs;
  colmax::DocSelection selection;
  int threads;
};

QueryCall query_call(const py::object& query, const py::object& doc_tokens, const py::object& doc_offsets,
                     const py::object& doc_scales, const py::object& candidates, const py::object& threads) {
  QueryCall call;
  call.query_array = as_array(query, "query");
  call.tokens_array = as_array(doc_tokens, "doc_tokens");
  call.offsets_array = as_array(doc_offsets, "doc_offsets");
  call.query = query_matrix(call.query_array);
  call.docs = doc_matrix(call.tokens_array, call.offsets_array, doc_scales, call.scales_array);
  if (!candidates.is_none()) call.candidates_array = as_array(candidates, "candidates");
  call.selection = selection(candidates);
  call.threads = thread_count(threads);
  return call;
}

py::array_t<float> maxsim(const py::object& query, const py::object& doc_tokens, const py::object& doc_offsets,
                          const py::object& doc_scales, const py::object& candidates, const py::object& threads) {
  const QueryCall call = query_call(query, doc_tokens, doc_offsets, doc_scales, candidates, threads);
  py::array_t<float> out(n_selected(call.docs, call.selection));
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    colmax::maxsim(call.query, call.docs, call.selection, dst, call.threads);
  }
  return out;
}

py::array_t<float> maxsim_batch(const py::sequence& queries, const py::object& doc_tokens,
                                const py::object& doc_offsets, const py::object& doc_scales,
                                const py::object& candidates, const py::object& threads) {
  std::vector<py::array> arrays;  // keeps every query alive while the GIL is released
  std::vector<colmax::QueryMatrix> qms;
  for (py::ssize_t i = 0; i < static_cast<py::ssize_t>(py::len(queries)); ++i) {
    const std::string name = "queries[" + std::to_string(i) + "]";
    arrays.push_back(as_array(queries[i], name.c_str()));
    qms.push_back(query_matrix(arrays.back(), name.c_str()));
  }
  const py::array t = as_array(doc_tokens, "doc_tokens"), o = as_array(doc_offsets, "doc_offsets");
  const colmax::DocMatrix dm = doc_matrix(t, o, doc_scales, arrays);
  const colmax::DocSelection sel = selection(candidates);
  const int n_threads = thread_count(threads);
  py::array_t<float> out({static_cast<py::ssize_t>(qms.size()), static_cast<py::ssize_t>(n_selected(dm, sel))});
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    colmax::maxsim_batch(qms.data(), static_cast<std::int64_t>(qms.size()), dm, sel, dst, n_threads);
  }
  return out;
}

py::tuple maxsim_topk(const py::object& query, const py::object& doc_tokens, const py::object& doc_offsets,
                      std::int64_t k, const py::object& doc_scales, const py::object& candidates,
                      const py::object& threads) {
  const QueryCall call = query_call(query, doc_tokens, doc_offsets, doc_scales, candidates, threads);
  colmax::TopK top;
  {
    py::gil_scoped_release release;
    top = colmax::maxsim_topk(call.query, call.docs, k, call.selection, call.threads);
  }
  py::array_t<std::int64_t> ids(static_cast<py::ssize_t>(top.ids.size()));
  py::array_t<float> scores(static_cast<py::ssize_t>(top.scores.size()));
  std::copy(top.ids.begin(), top.ids.end(), ids.mutable_data());
  std::copy(top.scores.begin(), top.scores.end(), scores.mutable_data());
  return py::make_tuple(ids, scores);
}

// An input array of one dtype and rank, C-contiguous; read-only buffers (memmaps) are fine.
// dtype is a numpy name ("float32", "uint16", ...); kind/itemsize follow from it.
py::array typed_array(const py::handle& obj, const std::string& name, char kind, py::ssize_t itemsize,
                      const char* dtype, py::ssize_t ndim, const char* shape) {
  const py::array a = as_array(obj, name.c_str(), dtype);
  if (a.dtype().kind() != kind || a.itemsize() != itemsize)
    throw py::type_error(name + " must be " + dtype + ", got " + dtype_str(a) + "; convert with numpy.asarray(" + name +
                         ", dtype=numpy." + dtype + ")");
  require_ndim(a, ndim, name.c_str(), shape);
  require_c_contiguous(a, name.c_str());
  return a;
}

py::array float32_matrix(const py::handle& obj, const std::string& name, const char* shape) {
  return typed_array(obj, name, 'f', 4, "float32", 2, shape);
}

void require_length(const py::array& a, py::ssize_t n, const std::string& name, const std::string& rule) {
  if (a.shape(0) != n)
    throw py::value_error(name + " must have " + rule + " (" + std::to_string(n) + ") entries, got " +
                          std::to_string(a.shape(0)));
}

// Centroids, the bucket values and nbits of a compressed index; cutoffs only when compressing.
struct CodebookArgs {
  py::array centroids, cutoffs, weights;
  colmax::plaid::Codebook cb;
};

CodebookArgs codebook(const py::object& centroids, const py::object* cutoffs, const py::object* weights, int nbits,
                      bool normalize) {
  CodebookArgs args;
  args.centroids = float32_matrix(centroids, "centroids", "(n_centroids, dim)");
  args.cb.centroids = static_cast<const float*>(args.centroids.data());
  args.cb.n_centroids = args.centroids.shape(0);
  args.cb.dim = args.centroids.shape(1);
  args.cb.nbits = nbits;
  args.cb.normalize = normalize;
  const bool valid_nbits = nbits == 1 || nbits == 2 || nbits == 4 || nbits == 8;
  if (!valid_nbits) throw py::value_error("nbits must be 1, 2, 4 or 8, got " + std::to_string(nbits));
  const py::ssize_t buckets = py::ssize_t(1) << nbits;
  if (cutoffs != nullptr) {
    args.cutoffs = typed_array(*cutoffs, "cutoffs", 'f', 4, "float32", 1, "(2**nbits - 1,)");
    require_length(args.cutoffs, buckets - 1, "cutoffs", "2**nbits - 1");
    args.cb.cutoffs = static_cast<const float*>(args.cutoffs.data());
  }
  if (weights != nullptr) {
    args.weights = typed_array(*weights, "weights", 'f', 4, "float32", 1, "(2**nbits,)");
    require_length(args.weights, buckets, "weights", "2**nbits");
    args.cb.weights = static_cast<const float*>(args.weights.data());
  }
  return args;
}

py::array codes_array(const py::handle& obj, const std::string& name) {
  return typed_array(obj, name, 'u', 2, "uint16", 1, "(n_tokens,)");
}

py::array offsets_array(const py::handle& obj, const std::string& name) {
  const py::array a = typed_array(obj, name, 'i', 8, "int64", 1, "(n_docs + 1,)");
  if (a.shape(0) < 1) throw py::value_error(name + " needs n_docs + 1 entries (at least [0])");
  return a;
}

// residuals must be (n, dim * nbits / 8) uint8 for n rows.
py::array residuals_array(const py::handle& obj, const std::string& name, const colmax::plaid::Codebook& cb,
                          py::ssize_t n) {
  const py::array a = typed_array(obj, name, 'u', 1, "uint8", 2, "(n_tokens, dim * nbits // 8)");
  const std::int64_t bytes = colmax::plaid::packed_bytes(cb.dim, cb.nbits);
  if (a.shape(0) != n || a.shape(1) != bytes)
    throw py::value_error(name + " must have shape (" + std::to_string(n) + ", " + std::to_string(bytes) +
                          ") to match the codes and dim * nbits // 8, got (" + std::to_string(a.shape(0)) + ", " +
                          std::to_string(a.shape(1)) + ")");
  return a;
}

py::tuple kmeans_assign(const py::object& x, const py::object& centroids, std::int64_t probe_groups,
                        const py::object& threads) {
  const py::array xs = float32_matrix(x, "x", "(n, dim)");
  const py::array cs = float32_matrix(centroids, "centroids", "(n_centroids, dim)");
  if (xs.shape(1) != cs.shape(1))
    throw py::value_error("dimension mismatch: x has dim " + std::to_string(xs.shape(1)) + " but centroids have dim " +
                          std::to_string(cs.shape(1)));
  const int n_threads = thread_count(threads);
  py::array_t<std::int32_t> codes(xs.shape(0));
  py::array_t<float> best(xs.shape(0));
  std::int32_t* codes_out = codes.mutable_data();
  float* best_out = best.mutable_data();
  {
    py::gil_scoped_release release;
    const auto* xp = static_cast<const float*>(xs.data());
    const auto* cp = static_cast<const float*>(cs.data());
    if (probe_groups == 0)
      colmax::plaid::assign(xp, xs.shape(0), xs.shape(1), cp, cs.shape(0), codes_out, best_out, n_threads);
    else
      colmax::plaid::assign_grouped(xp, xs.shape(0), xs.shape(1), cp, cs.shape(0), probe_groups, codes_out, best_out,
                                    n_threads);
  }
  return py::make_tuple(codes, best);
}

py::array_t<std::uint8_t> plaid_compress(const py::object& x, const py::object& codes, const py::object& centroids,
                                         const py::object& cutoffs, int nbits, const py::object& threads) {
  const CodebookArgs args = codebook(centroids, &cutoffs, nullptr, nbits, false);
  const py::array xs = float32_matrix(x, "x", "(n, dim)");
  const py::array cs = codes_array(codes, "codes");
  if (xs.shape(1) != args.cb.dim)
    throw py::value_error("dimension mismatch: x has dim " + std::to_string(xs.shape(1)) + " but centroids have dim " +
                          std::to_string(args.cb.dim));
  require_length(cs, xs.shape(0), "codes", "one per row of x");
  const int n_threads = thread_count(threads);
  const std::int64_t bytes = colmax::plaid::packed_bytes(args.cb.dim, nbits);
  py::array_t<std::uint8_t> out({xs.shape(0), static_cast<py::ssize_t>(bytes)});
  std::uint8_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    colmax::plaid::compress(args.cb, static_cast<const float*>(xs.data()), static_cast<const std::uint16_t*>(cs.data()),
                            xs.shape(0), dst, n_threads);
  }
  return out;
}

py::array_t<float> plaid_decompress(const py::object& codes, const py::object& residuals, const py::object& centroids,
                                    const py::object& weights, int nbits, bool normalize, const py::object& threads) {
  const CodebookArgs args = codebook(centroids, nullptr, &weights, nbits, normalize);
  const py::array cs = codes_array(codes, "codes");
  const py::array rs = residuals_array(residuals, "residuals", args.cb, cs.shape(0));
  const int n_threads = thread_count(threads);
  py::array_t<float> out({cs.shape(0), static_cast<py::ssize_t>(args.cb.dim)});
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    colmax::plaid::decompress(args.cb, static_cast<const std::uint16_t*>(cs.data()),
                              static_cast<const std::uint8_t*>(rs.data()), cs.shape(0), dst, n_threads);
  }
  return out;
}

py::tuple quantize_int8(const py::object& x, const py::object& threads) {
  const py::array xs = float32_matrix(x, "x", "(n, dim)");
  const auto* data = static_cast<const float*>(xs.data());
  for (py::ssize_t i = 0; i < xs.shape(0) * xs.shape(1); ++i)
    if (!std::isfinite(data[i]))
      throw py::value_error("x contains NaN or infinity (row " + std::to_string(i / xs.shape(1)) +
                            "); pass finite values");
  const int n_threads = thread_count(threads);
  py::array_t<std::int8_t> values({xs.shape(0), xs.shape(1)});
  py::array_t<float> scales(xs.shape(0));
  std::int8_t* v = values.mutable_data();
  float* s = scales.mutable_data();
  {
    py::gil_scoped_release release;
    colmax::quantize_int8(data, xs.shape(0), xs.shape(1), v, s, n_threads);
  }
  return py::make_tuple(values, scales);
}

template <class T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
  py::array_t<T> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

// Stored document codes: uint8 blobs and their int64 byte offsets, one more than the documents.
colmax::plaid::DocCodes doc_codes_view(const py::array& bytes, const py::array& offsets, py::ssize_t n_docs,
                                       const std::string& name) {
  if (offsets.shape(0) != n_docs + 1)
    throw py::value_error(name + "_offsets must have one entry per document plus one (" + std::to_string(n_docs + 1) +
                          "), got " + std::to_string(offsets.shape(0)) + "; pass the arrays plaid_doc_codes returned");
  return {static_cast<const std::uint8_t*>(bytes.data()), bytes.shape(0),
          static_cast<const std::int64_t*>(offsets.data())};
}

py::array bytes_array(const py::handle& obj, const std::string& name) {
  return typed_array(obj, name, 'u', 1, "uint8", 1, "(n_bytes,)");
}

py::tuple plaid_doc_codes(const py::object& codes, const py::object& doc_offsets, std::int64_t n_centroids) {
  const py::array cs = codes_array(codes, "codes");
  const py::array os = offsets_array(doc_offsets, "doc_offsets");
  const auto* offsets = static_cast<const std::int64_t*>(os.data());
  if (offsets[os.shape(0) - 1] != cs.shape(0))
    throw py::value_error("doc_offsets must end at the number of codes (" + std::to_string(cs.shape(0)) +
                          "), but ends at " + std::to_string(offsets[os.shape(0) - 1]));
  colmax::plaid::EncodedDocCodes out;
  {
    py::gil_scoped_release release;
    out = colmax::plaid::encode_doc_codes(static_cast<const std::uint16_t*>(cs.data()), offsets, os.shape(0) - 1,
                                          n_centroids);
  }
  return py::make_tuple(to_numpy(out.order), to_numpy(out.bytes), to_numpy(out.offsets));
}

py::array_t<std::uint16_t> plaid_token_codes(const py::object& doc_codes, const py::object& doc_code_offsets,
                                             const py::object& doc_offsets, const py::object& docs,
                                             std::int64_t n_centroids) {
  const py::array os = offsets_array(doc_offsets, "doc_offsets");
  const py::array bytes = bytes_array(doc_codes, "doc_codes");
  const py::array code_offsets = offsets_array(doc_code_offsets, "doc_code_offsets");
  const colmax::plaid::DocCodes view = doc_codes_view(bytes, code_offsets, os.shape(0) - 1, "doc_code");
  const py::array ds = typed_array(docs, "docs", 'i', 8, "int64", 1, "(n,)");
  const auto* offsets = static_cast<const std::int64_t*>(os.data());
  const auto* ids = static_cast<const std::int64_t*>(ds.data());
  std::int64_t total = 0;
  for (py::ssize_t b = 0; b < ds.shape(0); ++b) {
    if (ids[b] < 0 || ids[b] >= os.shape(0) - 1)
      throw py::value_error("docs[" + std::to_string(b) + "] = " + std::to_string(ids[b]) +
                            " is out of range: the segment has " + std::to_string(os.shape(0) - 1) + " documents");
    total += offsets[ids[b] + 1] - offsets[ids[b]];
  }
  py::array_t<std::uint16_t> out(static_cast<py::ssize_t>(std::max<std::int64_t>(total, 0)));
  std::uint16_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    colmax::plaid::token_codes(view, offsets, os.shape(0) - 1, n_centroids, ids, ds.shape(0), dst);
  }
  return out;
}

py::tuple plaid_build_ivf(const py::object& doc_codes, const py::object& doc_code_offsets,
                          const py::object& doc_offsets, std::int64_t n_centroids) {
  const py::array os = offsets_array(doc_offsets, "doc_offsets");
  const py::array bytes = bytes_array(doc_codes, "doc_codes");
  const py::array code_offsets = offsets_array(doc_code_offsets, "doc_code_offsets");
  const colmax::plaid::DocCodes view = doc_codes_view(bytes, code_offsets, os.shape(0) - 1, "doc_code");
  colmax::plaid::Ivf ivf;
  {
    py::gil_scoped_release release;
    ivf = colmax::plaid::build_ivf(view, static_cast<const std::int64_t*>(os.data()), os.shape(0) - 1, n_centroids);
  }
  return py::make_tuple(to_numpy(ivf.offsets), to_numpy(ivf.bytes));
}

std::int64_t plaid_ivf_bytes(const py::object& ivf_offsets, std::int64_t n_docs) {
  const py::array os = typed_array(ivf_offsets, "ivf_offsets", 'i', 8, "int64", 1, "(n_centroids + 1,)");
  if (os.shape(0) < 2) throw py::value_error("ivf_offsets needs n_centroids + 1 entries, at least 2");
  return colmax::plaid::ivf_list_starts(static_cast<const std::int64_t*>(os.data()), os.shape(0) - 1, n_docs).back();
}

// One segment tuple, checked; its arrays stay referenced while the GIL is released.
struct SegmentArgs {
  std::vector<py::array> keep_alive;
  colmax::DocMatrix exact;
  colmax::plaid::Segment segment;
};

void segment_args(const py::handle& item, std::size_t i, const colmax::plaid::Codebook& cb, SegmentArgs& out) {
  const std::string name = "segments[" + std::to_string(i) + "]";
  if (!py::isinstance<py::tuple>(item) || py::len(item) != 10)
    throw py::type_error(
        name +
        " must be a tuple (doc_codes, doc_code_offsets, residuals, offsets, ivf_offsets, ivf, allowed, "
        "exact_tokens, exact_scales, first_pos)");
  const py::tuple t = py::reinterpret_borrow<py::tuple>(item);
  const py::array doc_codes = bytes_array(t[0], name + ".doc_codes");
  const py::array doc_code_offsets = offsets_array(t[1], name + ".doc_code_offsets");
  const py::array offsets = offsets_array(t[3], name + ".offsets");
  const auto* off = static_cast<const std::int64_t*>(offsets.data());
  const py::array residuals = residuals_array(t[2], name + ".residuals", cb, off[offsets.shape(0) - 1]);
  const py::array ivf_offsets = typed_array(t[4], name + ".ivf_offsets", 'i', 8, "int64", 1, "(n_centroids + 1,)");
  const py::array ivf = bytes_array(t[5], name + ".ivf");
  require_length(ivf_offsets, cb.n_centroids + 1, name + ".ivf_offsets", "n_centroids + 1");
  out.keep_alive = {doc_codes, doc_code_offsets, residuals, offsets, ivf_offsets, ivf};
  colmax::plaid::Segment& s = out.segment;
  s.n_docs = offsets.shape(0) - 1;
  s.codes = doc_codes_view(doc_codes, doc_code_offsets, s.n_docs, name + ".doc_code");
  s.residuals = static_cast<const std::uint8_t*>(residuals.data());
  s.offsets = off;
  s.ivf_offsets = static_cast<const std::int64_t*>(ivf_offsets.data());
  s.ivf = static_cast<const std::uint8_t*>(ivf.data());
  s.ivf_bytes = ivf.shape(0);
  if (!t[6].is_none()) {
    const py::array allowed = typed_array(t[6], name + ".allowed", 'i', 8, "int64", 1, "(n_allowed,)");
    out.keep_alive.push_back(allowed);
    s.allowed = colmax::DocSelection::subset(static_cast<const std::int64_t*>(allowed.data()), allowed.shape(0));
  }
  if (!t[7].is_none()) {
    const std::string exact_name = name + ".exact_tokens";
    const py::array exact = as_array(t[7], exact_name.c_str());
    const DType dtype = storage_dtype(exact, exact_name);
    require_ndim(exact, 2, exact_name.c_str(), "(n_tokens, dim)");
    require_c_contiguous(exact, exact_name.c_str());
    out.keep_alive.push_back(exact);
    const float* scales = row_scales(dtype, exact, t[8], exact_name, name + ".exact_scales", out.keep_alive);
    out.exact = {exact.data(), dtype, exact.shape(0), exact.shape(1), off, s.n_docs, scales};
    s.exact = &out.exact;
  } else if (!t[8].is_none()) {
    throw py::value_error(name + ".exact_scales applies only with int8 exact_tokens");
  }
  s.first_pos = t[9].cast<std::int64_t>();
}

py::tuple plaid_search(const py::object& query, const py::object& centroids, const py::object& weights, int nbits,
                       bool normalize, const py::sequence& segments, std::int64_t k, std::int64_t nprobe,
                       std::int64_t ncandidates, bool exhaustive, const py::object& decompress,
                       const py::object& threads, const py::object& stats, const py::object& complete) {
  if (!stats.is_none() && !py::isinstance<py::dict>(stats))
    throw py::type_error("stats must be a dict to fill, or None");
  if (!decompress.is_none() && !py::isinstance<py::bool_>(decompress))
    throw py::type_error("decompress must be True, False or None (as exhaustive)");
  const bool decompress_rows = decompress.is_none() ? exhaustive : decompress.cast<bool>();
  const CodebookArgs args = codebook(centroids, nullptr, &weights, nbits, normalize);
  const py::array q = as_array(query, "query");
  const colmax::QueryMatrix qm = query_matrix(q);
  // Segments point into each other's DocMatrix, so the list must not reallocate after filling.
  std::vector<SegmentArgs> segs(static_cast<std::size_t>(py::len(segments)));
  for (std::size_t i = 0; i < segs.size(); ++i) segment_args(segments[i], i, args.cb, segs[i]);
  std::vector<colmax::plaid::Segment> plain;
  for (const SegmentArgs& s : segs) plain.push_back(s.segment);
  if (!complete.is_none() && !PyCallable_Check(complete.ptr()))
    throw py::type_error(
        "complete must be a function taking the candidates (one int64 array of local ids per segment) and returning "
        "one int64 array of local document ids per segment");
  // Called by the search with the GIL released: takes it to call `complete`; a Python exception
  // raised there (or by the checks) leaves the search as itself.
  std::vector<py::array> complete_ids;
  colmax::plaid::CompleteFn more;
  if (!complete.is_none())
    more = [&](const std::vector<std::vector<std::int64_t>>& candidates) {
      const py::gil_scoped_acquire gil;
      py::list shown;
      for (const auto& ids : candidates) {
        py::array_t<std::int64_t> a(static_cast<py::ssize_t>(ids.size()));
        std::copy(ids.begin(), ids.end(), a.mutable_data());
        shown.append(a);
      }
      const py::object lists = complete(shown);
      if (!py::isinstance<py::sequence>(lists) || py::len(lists) != segs.size())
        throw py::type_error("complete() must return a list with one int64 array of local document ids per segment");
      std::vector<colmax::DocSelection> out;
      for (std::size_t i = 0; i < segs.size(); ++i) {
        const std::string name = "complete()[" + std::to_string(i) + "]";
        complete_ids.push_back(typed_array(py::sequence(lists)[i], name, 'i', 8, "int64", 1, "(n,)"));
        out.push_back(colmax::DocSelection::subset(static_cast<const std::int64_t*>(complete_ids.back().data()),
                                                   complete_ids.back().shape(0)));
      }
      return out;
    };
  const int n_threads = thread_count(threads);
  colmax::TopK top;
  colmax::plaid::SearchStats st;
  std::vector<float> completed;
  {
    py::gil_scoped_release release;
    top =
        colmax::plaid::search(qm, args.cb, plain.data(), static_cast<std::int64_t>(plain.size()),
                              {k, nprobe, ncandidates, exhaustive, decompress_rows}, n_threads, &st, more, &completed);
  }
  if (!stats.is_none()) {
    py::dict d = py::reinterpret_borrow<py::dict>(stats);
    d["check_s"] = st.check_s;
    d["probe_s"] = st.probe_s;
    d["gather_s"] = st.gather_s;
    d["approx_s"] = st.approx_s;
    d["exact_s"] = st.exact_s;
    d["decode_s"] = st.decode_s;
    d["probed"] = st.probed;
    d["gathered"] = st.gathered;
    d["pruned"] = st.pruned;
    d["scored"] = st.scored;
  }
  py::array_t<std::int64_t> ids(static_cast<py::ssize_t>(top.ids.size()));
  py::array_t<float> scores(static_cast<py::ssize_t>(top.scores.size()));
  std::copy(top.ids.begin(), top.ids.end(), ids.mutable_data());
  std::copy(top.scores.begin(), top.scores.end(), scores.mutable_data());
  if (complete.is_none()) return py::make_tuple(ids, scores);
  return py::make_tuple(ids, scores, to_numpy(completed));
}

std::vector<std::string> isa_names(const std::vector<colmax::Isa>& isas) {
  std::vector<std::string> names;
  for (colmax::Isa isa : isas) names.emplace_back(colmax::isa_name(isa));
  return names;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "colmax's C++ core: exact SIMD MaxSim over ragged document token matrices.";
  // std::invalid_argument from the core (bad shapes, offsets, indices) surfaces as ValueError.

  m.def("maxsim", &maxsim, py::arg("query"), py::arg("doc_tokens"), py::arg("doc_offsets"), py::kw_only(),
        py::arg("doc_scales") = py::none(), py::arg("candidates") = py::none(), py::arg("threads") = py::none(),
        "MaxSim scores of every document (or of `candidates`, in their order); float32 array.");
  m.def("maxsim_batch", &maxsim_batch, py::arg("queries"), py::arg("doc_tokens"), py::arg("doc_offsets"), py::kw_only(),
        py::arg("doc_scales") = py::none(), py::arg("candidates") = py::none(), py::arg("threads") = py::none(),
        "MaxSim scores of several queries in one pass over the documents; (n_queries, n_docs) float32.");
  m.def("maxsim_topk", &maxsim_topk, py::arg("query"), py::arg("doc_tokens"), py::arg("doc_offsets"), py::arg("k"),
        py::kw_only(), py::arg("doc_scales") = py::none(), py::arg("candidates") = py::none(),
        py::arg("threads") = py::none(),
        "The k best documents: (int64 indices, float32 scores), score descending, ties by lower index.");
  m.def("quantize_int8", &quantize_int8, py::arg("x"), py::kw_only(), py::arg("threads") = py::none(),
        "Symmetric int8 quantization per row of float32 x: (int8 values (n, dim), float32 scales (n,)), "
        "x ~ scales[:, None] * values; values in [-127, 127], round half to even.");
  m.attr("QUERY_LEVELS") = colmax::kQueryLevels;
  m.attr("RESIDUAL_QUERY_LEVELS") = colmax::kResidualQueryLevels;

  m.def("kmeans_assign", &kmeans_assign, py::arg("x"), py::arg("centroids"), py::kw_only(), py::arg("probe_groups") = 0,
        py::arg("threads") = py::none(),
        "Nearest centroid by inner product of every row: (int32 codes, float32 best scores); ties to the lower index. "
        "probe_groups > 0 searches only the centroids of each row's probe_groups best groups of about "
        "sqrt(n_centroids) (approximate, far fewer operations for large codebooks).");
  m.def("plaid_compress", &plaid_compress, py::arg("x"), py::arg("codes"), py::arg("centroids"), py::arg("cutoffs"),
        py::arg("nbits"), py::kw_only(), py::arg("threads") = py::none(),
        "Residuals x - centroids[codes] quantized to nbits per dimension (searchsorted(cutoffs, r, 'right')), packed "
        "LSB-first: uint8 (n, dim * nbits // 8).");
  m.def("plaid_decompress", &plaid_decompress, py::arg("codes"), py::arg("residuals"), py::arg("centroids"),
        py::arg("weights"), py::arg("nbits"), py::arg("normalize"), py::kw_only(), py::arg("threads") = py::none(),
        "centroids[codes] + weights[bucket] per dimension, L2-normalized per row when normalize: float32 (n, dim).");
  m.def("plaid_doc_codes", &plaid_doc_codes, py::arg("codes"), py::arg("doc_offsets"), py::arg("n_centroids"),
        "Per-document stored codes: (int64 token order, uint8 blobs, int64 blob offsets). Store token order[t] as "
        "token t: each document's tokens sorted by code (stable), its codes as run starts plus distinct codes.");
  m.def("plaid_token_codes", &plaid_token_codes, py::arg("doc_codes"), py::arg("doc_code_offsets"),
        py::arg("doc_offsets"), py::arg("docs"), py::arg("n_centroids"),
        "uint16 code of every stored token of the documents `docs`, document after document.");
  m.def("plaid_build_ivf", &plaid_build_ivf, py::arg("doc_codes"), py::arg("doc_code_offsets"), py::arg("doc_offsets"),
        py::arg("n_centroids"),
        "Inverted file from stored document codes: (int64 cumulative list lengths (n_centroids + 1,), uint8 "
        "Elias-Fano lists of ascending document ids, back to back).");
  m.def("plaid_ivf_bytes", &plaid_ivf_bytes, py::arg("ivf_offsets"), py::arg("n_docs"),
        "Size in bytes of the inverted file whose list lengths ivf_offsets gives, for a segment of n_docs documents.");
  m.def("plaid_search", &plaid_search, py::arg("query"), py::arg("centroids"), py::arg("weights"), py::arg("nbits"),
        py::arg("normalize"), py::arg("segments"), py::arg("k"), py::arg("nprobe"), py::arg("ncandidates"),
        py::kw_only(), py::arg("exhaustive") = false, py::arg("decompress") = py::none(),
        py::arg("threads") = py::none(), py::arg("stats") = py::none(), py::arg("complete") = py::none(),
        "PLAID search over compressed segments (doc_codes, doc_code_offsets, residuals, offsets, ivf_offsets, ivf, "
        "allowed, exact_tokens, exact_scales, first_pos): (int64 positions, float32 scores), best first, ties to the "
        "lower position. decompress (default: exhaustive) scores rows without an exact copy on their float32 "
        "decompressed vectors instead of from the residuals. A dict passed as stats receives each stage's seconds "
        "and document counts. complete, a function taking the candidates the last stage scores (one sorted "
        "int64 array of local ids per segment) and returning one sorted int64 array of local ids per segment "
        "(called once, before the last stage), has those documents scored in the last stage too: a third array, "
        "their float32 scores segment after segment.");

  m.def(
      "compiled_isas", [] { return isa_names(colmax::compiled_isas()); },
      "Instruction sets with a kernel in this build, slowest first.");
  m.def(
      "supported_isas", [] { return isa_names(colmax::supported_isas()); },
      "Compiled instruction sets this CPU and OS can run, slowest first.");
  m.def(
      "active_isa", [] { return std::string(colmax::isa_name(colmax::active_isa())); },
      "The instruction set whose kernel scores now.");
  m.def(
      "set_active_isa", [](const std::string& name) { colmax::set_active_isa(colmax::isa_from_name(name)); },
      py::arg("name"), "Force one instruction set (tests and benchmarks); ValueError if it cannot run here.");
  m.def("default_threads", &colmax::default_threads, "Worker threads used when threads=None.");
  m.def(
      "fma_peak_gflops",
      [](double seconds) {
        py::gil_scoped_release release;
        return colmax::fma_peak_gflops(seconds);
      },
      py::arg("seconds") = 0.5,
      "Measured float32 AVX-512 FMA GFLOP/s of one core (0 without AVX-512): the benchmarks' yardstick.");
}
