// Two independent pieces of work, on two cores where the machine has a second one free: two cores' recurrences
// over the same batch (forward_pair/backward_pair in kernel_host.h), or two whole sides of a training step built on
// them by code that includes this header. Serial inside, independent of each other: the one place at RL sizes where
// a second core pays.
//
// Not through intra-op threads: with torch's OpenMP pool at two threads every small op of a training step forks and
// joins (slower overall, and much slower when the machine is busy, as OpenMP spins waiting for a preempted
// thread). Instead the second piece is offered to ATen's inter-op pool (at::launch, which carries autograd and
// dispatch state over) and whichever thread is free takes it: if the worker has not started it by the time the
// caller finished the first piece, the caller runs it too, so a busy machine costs one queued task, never a wait.
// RLGRU_SERIAL_PAIR=1 keeps both on the caller's thread (the one-core figure of benchmarks/training_speed.py).
//
// Each extension that includes this gets its own copy (anonymous namespace, internal linkage).

#ifndef RLGRU_PAIR_THREADS_H
#define RLGRU_PAIR_THREADS_H

#include <ATen/Parallel.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <thread>

namespace rlgru_parallel {
namespace {

// Rows (time * batch) below which the two pieces run one after the other: a rollout step's few microseconds per
// piece do not repay handing one to another thread.
constexpr int64_t kMinParallelRows = 64;

inline bool pair_threads_enabled() {
  static const bool enabled = [] {
    const char* flag = std::getenv("RLGRU_SERIAL_PAIR");
    const bool serial = flag != nullptr && std::string(flag) != "" && std::string(flag) != "0";
    return !serial && at::get_num_interop_threads() > 1;
  }();
  return enabled;
}

struct PairTasks {
  std::atomic<int> next{0};      // tasks 0 and 1, claimed in order by whichever thread gets there
  std::atomic<int> finished{0};  // claimed tasks that returned or threw
  std::exception_ptr error;      // the worker's exception, if any (written before `finished` is incremented)
};

// f(0) and f(1), possibly at once; rethrows the first exception after both ended.
template <class F>
void run_both(int64_t rows, const F& f) {
  if (rows < kMinParallelRows || !pair_threads_enabled()) {
    f(0);
    f(1);
    return;
  }
  auto tasks = std::make_shared<PairTasks>();
  const F* fn = &f;  // only dereferenced for a claimed task, which the caller waits for
  at::launch([tasks, fn]() {
    for (int i; (i = tasks->next.fetch_add(1)) < 2;) {
      try {
        (*fn)(i);
      } catch (...) {
        tasks->error = std::current_exception();
      }
      tasks->finished.fetch_add(1);
    }
  });
  std::exception_ptr own_error;
  for (int i; (i = tasks->next.fetch_add(1)) < 2;) {
    try {
      f(i);
    } catch (...) {
      own_error = std::current_exception();
    }
    tasks->finished.fetch_add(1);
  }
  while (tasks->finished.load() < 2) std::this_thread::yield();  // the task the worker claimed, if any
  if (own_error) std::rethrow_exception(own_error);
  if (tasks->error) std::rethrow_exception(tasks->error);
}

}  // namespace
}  // namespace rlgru_parallel

#endif  // RLGRU_PAIR_THREADS_H
