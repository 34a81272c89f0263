// Fused single-layer GRU for CPU (PyTorch's gate layout r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))).
//
// Why: PyTorch ships oneDNN's fused LSTM on CPU but runs nn.GRU as a chain of small ATen ops per step, so a
// GRU, which does 3/4 of an LSTM's arithmetic, ends up several times slower. Here, as in every rlgru kernel:
//  * forward: the input projection for all steps is one big GEMM; each step is one register-tiled GEMM
//    (h_{t-1} @ W_hh^T, W_hh pre-packed per chunk of hidden units) whose tile epilogue applies the gates in
//    registers and saves r, z, n and W_hn h + b_hn for backward. Tiny problems (rollout steps) skip the packing
//    and use a BLAS call per step plus the same SIMD gate code.
//  * backward: the mirror image, one tiled GEMM per step (dGh_t @ W_hh) whose epilogue already computes the
//    gate gradients of step t-1; then dX and the weight gradients are big GEMMs over all steps at once.
//  * big GEMMs go to oneDNN when PyTorch has it, else to at::mm.
//  * episode-start resets are a per-step row mask keep[t, b] (0 zeroes h_prev before step t) applied inside
//    the loop, so sequences with resets run in one pass.
//
// Code paths: SIMD (float32; AVX-512F or AVX2+FMA, picked at run time) and generic (any floating dtype, any CPU:
// at::mm per step and the *same* templated gate code on scalars; float64 gradcheck). This file holds only the
// GRU's gate math; the passes, tiles, sequence drivers and operators are shared with the fused LSTM
// (kernel_common.h explains the layout).

#ifndef RLGRU_KERNEL_PASS
#define RLGRU_CELL_SOURCE "fused_gru.cpp"
#define RLGRU_CELL_OPS rlgru_fused_gru
#include "kernel_cell.h"
#else  // RLGRU_KERNEL_PASS: the GRU's gate math, compiled once per pass (kernel_pass.h comes first).

template <class O>
struct Cell {
  static constexpr const char* kName = "fused GRU";
  static constexpr int kGates = 3, kStates = 1, kSaved = 4;  // r, z, n; h; r, z, n, W_hn h + b_hn
  static constexpr bool kSplitBias = true;  // b_hh stays out of the input projection: n needs r * (W_hn h + b_hn)
  using V = typename O::V;

  // The reset mask k applies to the recurrent products and to h_prev (prev, already masked).
  static RLGRU_INLINE void forward(V k, const V (&gx)[3], const V (&gh)[3], const V (&bh)[3], const V (&prev)[1],
                                   V (&next)[1], V (&save)[4]) {
    const V r = O::sigmoid(gx[0] + gh[0] * k + bh[0]);
    const V z = O::sigmoid(gx[1] + gh[1] * k + bh[1]);
    const V hn = gh[2] * k + bh[2];
    const V n = O::tanh(gx[2] + r * hn);
    set_blocks(next, n + z * (prev[0] - n));
    set_blocks(save, r, z, n, hn);
  }

  // Input side dgx and recurrent side dgh (whose n block is scaled by r); the carry is dh_t * z_t, which flows to
  // h_{t-1}.
  static RLGRU_INLINE void backward(V dh, V /*dc*/, const V (&save)[4], const V (&prev)[1], V (&dgx)[3], V (&dgh)[3],
                                    V& carry) {
    const auto& [r, z, n, hn] = save;
    const V one = O::set1(1);
    const V dhz = dh * z;
    const V dan = (dh - dhz) * (one - n * n);
    const V dar = dan * hn * r * (one - r);
    const V daz = dh * (prev[0] - n) * z * (one - z);
    set_blocks(dgx, dar, daz, dan);
    set_blocks(dgh, dar, daz, dan * r);
    carry = dhz;
  }
};

#endif  // RLGRU_KERNEL_PASS
