// Everything of a fused cell kernel but its gate math, included by the cell's source at global scope after
// defining RLGRU_CELL_SOURCE (the source's own file name) and RLGRU_CELL_OPS (its torch.ops namespace). Code built
// on the cell elsewhere includes it too, with RLGRU_CELL_OPS left undefined, and registers operators of its own.
//  * the cell's kernel section, compiled once per ISA, each in its own namespace: scalar:: (the generic code, any
//    floating type) and, on x86-64 with GCC, avx2:: and avx512:: under `#pragma GCC target`. The source itself is
//    compiled with portable flags, so nothing outside those passes assumes more than baseline x86-64, and one
//    compiler run builds every variant;
//  * the host code and the operators (kernel_host.h), registered under RLGRU_CELL_OPS when it is defined.

#if !defined(RLGRU_CELL_SOURCE)
#error "define RLGRU_CELL_SOURCE (and RLGRU_CELL_OPS to register the cell's operators) before including kernel_cell.h"
#endif

#include "kernel_common.h"

namespace rlgru_kernel {
namespace {

#define RLGRU_KERNEL_PASS 0
namespace scalar {
#include "kernel_pass.h"
#include RLGRU_CELL_SOURCE  // NOLINT(build/include): the cell's kernel section
}  // namespace scalar
#undef RLGRU_KERNEL_PASS

#if RLGRU_X86_SIMD
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define RLGRU_KERNEL_PASS 2
namespace avx2 {
#include "kernel_pass.h"
#include RLGRU_CELL_SOURCE  // NOLINT(build/include): the cell's kernel section
}  // namespace avx2
#undef RLGRU_KERNEL_PASS
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx2,fma")
#define RLGRU_KERNEL_PASS 3
namespace avx512 {
#include "kernel_pass.h"
#include RLGRU_CELL_SOURCE  // NOLINT(build/include): the cell's kernel section
}  // namespace avx512
#undef RLGRU_KERNEL_PASS
#pragma GCC pop_options
#endif

#include "kernel_host.h"

}  // namespace
}  // namespace rlgru_kernel

// TORCH_LIBRARY stringizes its namespace argument, so the macro naming it must be expanded one level up.
#define RLGRU_TORCH_LIBRARY(ns, m) TORCH_LIBRARY(ns, m)
#ifdef RLGRU_CELL_OPS
RLGRU_TORCH_LIBRARY(RLGRU_CELL_OPS, m) { rlgru_kernel::register_ops(m); }
#endif
