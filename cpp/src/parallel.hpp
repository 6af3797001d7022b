// Dynamic scheduling of independent chunks over short-lived worker threads. The first
// exception thrown by any chunk stops the remaining work and is rethrown to the caller.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace colmax {

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
