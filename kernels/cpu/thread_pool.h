// A small persistent thread pool for the CPU kernels. parallel_for splits [0, n) into chunks
// handed out through an atomic counter (so a thread slowed by another process on a shared
// machine just takes fewer chunks); the calling thread works too, so ThreadPool(1) runs
// everything inline with no threads at all.
//
// Decode issues many small matvecs back to back (a 0.5B model's are 10-100 us each), so a
// condition-variable wake-up per call would cost as much as the work. Idle workers therefore
// spin on the job counter for a short while (kSpinMicros) before they block, and the caller
// spins likewise while waiting for the last chunk.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pv::kernels::cpu {

class ThreadPool {
 public:
  static constexpr int kSpinMicros = 200;

  // n_threads: total threads including the caller (>= 1; 0 means hardware_concurrency).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over disjoint ranges covering [0, n), each at least `grain` long
  // (except the last). Blocks until all are done; rethrows the first exception thrown by fn.
  // A parallel_for called from inside fn runs inline; calls from different outside threads
  // are serialised.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

 private:
  struct Job;
  void worker_loop();
  static void run_chunks(Job& job);

  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one parallel_for at a time when several outside threads share a pool
  std::mutex mu_;       // guards the sleeping side of the hand-offs (no lost wake-ups)
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<Job*> job_{nullptr};
  std::atomic<uint64_t> generation_{0};  // bumped (release) after job_ is set
  // The generation workers may still join (0 once the caller has handed out every chunk), and
  // the number of workers inside a job. A worker that wakes after the job closed skips it, so
  // the caller never waits for a thread the OS has not scheduled (a shared machine).
  std::atomic<uint64_t> open_gen_{0};
  std::atomic<int> active_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace pv::kernels::cpu
