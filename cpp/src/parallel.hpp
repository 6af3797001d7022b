// Dynamic scheduling of independent chunks over short-lived worker threads, and how many a call
// may take. The first exception thrown by any chunk stops the remaining work and is rethrown to
// the caller.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "colmax/maxsim.hpp"

namespace colmax {

// Threads of this process working for colmax now: the caller of every call in progress (BusyCall)
// and the workers of every parallel region. Calls that leave the thread count to colmax size
// themselves by it, so that concurrent calls share the CPUs instead of each taking all of them.
inline std::atomic<int>& busy_threads() {
  static std::atomic<int> busy{0};
  return busy;
}

// Counts the calling thread as busy while a call into the core runs.
class BusyCall {
 public:
  BusyCall() { ++busy_threads(); }
  ~BusyCall() { --busy_threads(); }
  BusyCall(const BusyCall&) = delete;
  BusyCall& operator=(const BusyCall&) = delete;
};

// threads <= 0 ("one per CPU"): the caller plus one thread per available CPU that no other call
// keeps busy, so one call alone gets every CPU and two at once about half each.
inline int resolve_threads(int threads) {
  if (threads > 0) return threads;
  const int cpus = default_threads();
  return std::clamp(1 + cpus - busy_threads().load(), 1, cpus);
}

// Workers that run n_chunks chunks on `threads` threads.
inline int worker_count(std::int64_t n_chunks, int threads) {
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, n_chunks)));
}

// run_chunk(worker, chunk), where worker < worker_count(n_chunks, threads) identifies the thread
// running the chunk, so chunks can reuse per-worker scratch memory.
template <class Fn>
void parallel_for_chunks_on_workers(std::int64_t n_chunks, int threads, Fn&& run_chunk) {
  const int workers = worker_count(n_chunks, threads);
  std::atomic<std::int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&](int worker) {
    try {
      for (std::int64_t c = next++; c < n_chunks && !failed; c = next++) run_chunk(worker, c);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  busy_threads() += workers - 1;
  struct Release {
    int n;
    ~Release() { busy_threads() -= n; }
  } release{workers - 1};
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  try {
    for (int w = 1; w < workers; ++w) pool.emplace_back(work, w);
  } catch (...) {
    failed = true;  // could not start a thread: finish with the ones we have, then report
    for (auto& t : pool) t.join();
    throw;
  }
  work(0);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

template <class Fn>
void parallel_for_chunks(std::int64_t n_chunks, int threads, Fn&& run_chunk) {
  parallel_for_chunks_on_workers(n_chunks, threads, [&](int, std::int64_t c) { run_chunk(c); });
}

}  // namespace colmax
