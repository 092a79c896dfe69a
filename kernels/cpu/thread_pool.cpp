#include "kernels/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>

namespace pv::kernels::cpu {
namespace {

thread_local bool t_inside_pool_job = false;

// How long an idle thread polls before it blocks: long enough to bridge the gap between two
// matvecs of a decode step, short enough not to burn a shared core for long.
constexpr auto kSpin = std::chrono::microseconds(ThreadPool::kSpinMicros);

template <typename Pred>
bool spin_until(Pred ready) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (ready()) return true;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }
}

}  // namespace

struct ThreadPool::Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int64_t chunk = 1;
  std::atomic<int64_t> next{0};
  std::mutex err_mu;
  std::exception_ptr error;
};

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) {
    n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  workers_.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(Job& job) {
  const bool was_inside = t_inside_pool_job;
  t_inside_pool_job = true;
  for (;;) {
    const int64_t begin = job.next.fetch_add(job.chunk, std::memory_order_relaxed);
    if (begin >= job.n) break;
    const int64_t end = std::min(job.n, begin + job.chunk);
    try {
      (*job.fn)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.err_mu);
      if (!job.error) job.error = std::current_exception();
      job.next.store(job.n, std::memory_order_relaxed);  // stop handing out work
    }
  }
  t_inside_pool_job = was_inside;
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly for the next job, then sleep until one is published.
    if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] {
        return stop_.load() || generation_.load(std::memory_order_acquire) != seen;
      });
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    // Enter, then check the job is still open (seq_cst on both sides: either the caller sees
    // this worker in active_ and waits for it, or this worker sees the job closed).
    active_.fetch_add(1);
    if (open_gen_.load() == seen) run_chunks(*job_.load(std::memory_order_acquire));
    if (active_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mu_);  // pairs with the caller's predicate check
      done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                              int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || t_inside_pool_job || n <= grain) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  Job job;
  job.fn = &fn;
  job.n = n;
  // ~4 chunks per thread: coarse enough that the atomic is cheap, fine enough to rebalance
  // when a core is taken by another process.
  job.chunk = std::max(grain, (n + 4 * size() - 1) / (4 * size()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_.store(&job, std::memory_order_relaxed);
    const uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
    open_gen_.store(gen);
    generation_.store(gen, std::memory_order_release);
  }
  wake_.notify_all();
  run_chunks(job);  // returns once every chunk has been handed out
  open_gen_.store(0);
  if (!spin_until([&] { return active_.load() == 0; })) {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return active_.load() == 0; });
  }
  job_.store(nullptr, std::memory_order_relaxed);
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace pv::kernels::cpu
