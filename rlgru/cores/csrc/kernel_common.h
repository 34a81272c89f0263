// What every fused recurrent kernel of rlgru (fused_gru.cpp, fused_lstm.cpp) shares: headers and macros, and the
// pointer bundle `Seq` its loops run over.
//
// A kernel source holds only its cell, `template <class O> struct Cell`: the constants the shared code needs and
// the gate math on lanes O (kernel_pass.h lists what it provides). Everything else comes from these headers:
//
//   #ifndef RLGRU_KERNEL_PASS
//   #define RLGRU_CELL_SOURCE "fused_<cell>.cpp"  // this file, compiled again once per ISA
//   #define RLGRU_CELL_OPS rlgru_fused_<cell>      // the torch.ops namespace
//   #include "kernel_cell.h"                       // the passes, the host code (kernel_host.h), the operators
//   #else
//   template <class O> struct Cell { ... };       // inside each pass, after kernel_pass.h
//   #endif
//
// Everything lands in an anonymous namespace, so each extension gets its own copy (and its own buffer pool) with
// internal linkage: two extensions loaded in one process cannot clash.

#ifndef RLGRU_KERNEL_COMMON_H
#define RLGRU_KERNEL_COMMON_H

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "pair_threads.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(RLGRU_NO_SIMD)
#define RLGRU_X86_SIMD 1
#include <immintrin.h>
#else
#define RLGRU_X86_SIMD 0
#endif

#if defined(__GNUC__)
#define RLGRU_INLINE inline __attribute__((always_inline))
#else
#define RLGRU_INLINE inline
#endif

namespace rlgru_kernel {
namespace {

// state tensors a cell may have (GRU: h; LSTM: h and c)
constexpr int kMaxStates = 2;

// Pointers of contiguous [T, B, ...] tensors for one layer's whole-sequence loops; S is float on the SIMD paths,
// any floating type on the generic one. State 0 is h, whose sequence is the layer's output. G is the cell's gate
// count; unused fields stay null.
template <typename S>
struct Seq {
  int64_t T, B, H;
  const S* keep;               // [T, B] or nullptr: 0 zeroes the states before step t
  const S* gx;                 // [T, B, G*H]: W_ih x + the bias the cell folds in
  const S* bhh;                // [G*H]: b_hh, for cells that keep it out of gx
  const S* wpack;              // W_hh packed for the forward or the backward tiles
  const S* init[kMaxStates];   // [B, H] each: the initial states
  S* seq[kMaxStates];          // [T, B, H] each: every step's states (seq[0] is the output)
  S* save;                     // [T, B, kSaved*H]: what backward needs; nullptr when not training
  const S* dout;               // [T, B, H]
  const S* dlast[kMaxStates];  // [B, H] each or nullptr: gradients of the last states
  S* dgx;                      // [T, B, G*H]: gradient of the input-side pre-activations
  S* dgh;                      // [T, B, G*H]: gradient of W_hh h_prev (dgx itself where the cell sums both sides)
  S* carry;                    // [B, H] scratch: the gradient a step's gates send straight to the previous step's
                               // last state (GRU: dh * z to h; LSTM: dc * f to c)
  S* dinit[kMaxStates];        // [B, H] each: gradients of the initial states

  // State i as step t sees it (before the reset mask).
  RLGRU_INLINE const S* prev(int i, int64_t t) const { return t == 0 ? init[i] : seq[i] + (t - 1) * B * H; }
  RLGRU_INLINE int64_t row(int64_t t, int64_t b) const { return t * B + b; }
  RLGRU_INLINE S keep_at(int64_t t, int64_t b) const { return keep != nullptr ? keep[t * B + b] : S(1); }
};

}  // namespace
}  // namespace rlgru_kernel

#endif  // RLGRU_KERNEL_COMMON_H
