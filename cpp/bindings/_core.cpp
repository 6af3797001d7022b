// pybind11 layer: check numpy inputs, release the GIL, call the core, wrap the results.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "colmax/isa.hpp"
#include "colmax/maxsim.hpp"
#include "colmax/peak.hpp"

namespace py = pybind11;
using colmax::DType;

namespace {

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

py::array as_array(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + " must be a numpy array, got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>() +
                         "; wrap it with numpy.asarray(..., dtype=numpy.float32)");
  return py::reinterpret_borrow<py::array>(obj);
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

DType storage_dtype(const py::array& a) {
  const char kind = a.dtype().kind();
  if (kind == 'f' && a.itemsize() == 4) return DType::f32;
  if (kind == 'f' && a.itemsize() == 2) return DType::f16;
  if (kind == 'u' && a.itemsize() == 2) return DType::bf16;
  throw py::type_error("doc_tokens must be float32, float16, or uint16 holding bfloat16 bits, got " + dtype_str(a) +
                       "; convert with doc_tokens.astype(numpy.float32) or colmax.to_bfloat16(doc_tokens)");
}

colmax::DocMatrix doc_matrix(const py::array& tokens, const py::array& offsets) {
  const DType dtype = storage_dtype(tokens);
  require_ndim(tokens, 2, "doc_tokens", "(total_tokens, dim)");
  require_c_contiguous(tokens, "doc_tokens");
  if (offsets.dtype().kind() != 'i' || offsets.itemsize() != 8)
    throw py::type_error("doc_offsets must be int64, got " + dtype_str(offsets) +
                         "; convert with doc_offsets.astype(numpy.int64)");
  require_ndim(offsets, 1, "doc_offsets", "(n_docs + 1,)");
  require_c_contiguous(offsets, "doc_offsets");
  if (offsets.shape(0) < 1) throw py::value_error("doc_offsets needs n_docs + 1 entries (at least [0])");
  return {
      tokens.data(),       dtype, tokens.shape(0), tokens.shape(1), static_cast<const std::int64_t*>(offsets.data()),
      offsets.shape(0) - 1};
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
  const int n = threads.cast<int>();
  if (n < 1) throw py::value_error("threads must be at least 1 (or None for one per CPU), got " + std::to_string(n));
  return n;
}

std::int64_t n_selected(const colmax::DocMatrix& docs, const colmax::DocSelection& sel) {
  return sel.all ? docs.n_docs : sel.count;
}

// One query against the documents, checked; the arrays stay referenced while the GIL is released.
struct QueryCall {
  py::array query_array, tokens_array, offsets_array, candidates_array;
  colmax::QueryMatrix query;
  colmax::DocMatrix docs;
  colmax::DocSelection selection;
  int threads;
};

QueryCall query_call(const py::object& query, const py::object& doc_tokens, const py::object& doc_offsets,
                     const py::object& candidates, const py::object& threads) {
  QueryCall call;
  call.query_array = as_array(query, "query");
  call.tokens_array = as_array(doc_tokens, "doc_tokens");
  call.offsets_array = as_array(doc_offsets, "doc_offsets");
  call.query = query_matrix(call.query_array);
  call.docs = doc_matrix(call.tokens_array, call.offsets_array);
  if (!candidates.is_none()) call.candidates_array = as_array(candidates, "candidates");
  call.selection = selection(candidates);
  call.threads = thread_count(threads);
  return call;
}

py::array_t<float> maxsim(const py::object& query, const py::object& doc_tokens, const py::object& doc_offsets,
                          const py::object& candidates, const py::object& threads) {
  const QueryCall call = query_call(query, doc_tokens, doc_offsets, candidates, threads);
  py::array_t<float> out(n_selected(call.docs, call.selection));
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    colmax::maxsim(call.query, call.docs, call.selection, dst, call.threads);
  }
  return out;
}

py::array_t<float> maxsim_batch(const py::sequence& queries, const py::object& doc_tokens,
                                const py::object& doc_offsets, const py::object& candidates,
                                const py::object& threads) {
  std::vector<py::array> arrays;  // keeps every query alive while the GIL is released
  std::vector<colmax::QueryMatrix> qms;
  for (py::ssize_t i = 0; i < static_cast<py::ssize_t>(py::len(queries)); ++i) {
    const std::string name = "queries[" + std::to_string(i) + "]";
    arrays.push_back(as_array(queries[i], name.c_str()));
    qms.push_back(query_matrix(arrays.back(), name.c_str()));
  }
  const py::array t = as_array(doc_tokens, "doc_tokens"), o = as_array(doc_offsets, "doc_offsets");
  const colmax::DocMatrix dm = doc_matrix(t, o);
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
                      std::int64_t k, const py::object& candidates, const py::object& threads) {
  const QueryCall call = query_call(query, doc_tokens, doc_offsets, candidates, threads);
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
        py::arg("candidates") = py::none(), py::arg("threads") = py::none(),
        "MaxSim scores of every document (or of `candidates`, in their order); float32 array.");
  m.def("maxsim_batch", &maxsim_batch, py::arg("queries"), py::arg("doc_tokens"), py::arg("doc_offsets"), py::kw_only(),
        py::arg("candidates") = py::none(), py::arg("threads") = py::none(),
        "MaxSim scores of several queries in one pass over the documents; (n_queries, n_docs) float32.");
  m.def("maxsim_topk", &maxsim_topk, py::arg("query"), py::arg("doc_tokens"), py::arg("doc_offsets"), py::arg("k"),
        py::kw_only(), py::arg("candidates") = py::none(), py::arg("threads") = py::none(),
        "The k best documents: (int64 indices, float32 scores), score descending, ties by lower index.");

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
