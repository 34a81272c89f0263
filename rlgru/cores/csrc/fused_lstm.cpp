// Fused single-layer LSTM for CPU with per-step episode-start resets (PyTorch's gate layout i, f, g, o;
// c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t)).
//
// Why: nn.LSTM on CPU is oneDNN's fused kernel, but it cannot zero the state of some envs in the middle of a
// sequence, so a recurrent learner has to cut training sequences at every episode start and pad them (early in
// training half the padded grid is padding). This kernel takes a per-step row mask keep[t, b] (0 zeroes h and c
// before step t) inside its time loop, so whole rollout lanes train in one pass. Design as fused_gru.cpp, with
// these differences:
//  * b_ih + b_hh are folded into the input projection's bias; the tile epilogue applies the gates and the cell
//    update and saves i, f, g, o, tanh(c) for backward; every step's c is kept too.
//  * backward: dc flows between steps through the [B, H] carry. Input and recurrent pre-activations share one
//    gradient dG (their biases are summed), so dX, dW_ih, dW_hh and the bias gradient are big GEMMs over one
//    transposed dG.
//
// This file holds only the LSTM's gate math; the passes, tiles, sequence drivers and operators are shared with
// the fused GRU (kernel_common.h explains the layout).

#ifndef RLGRU_KERNEL_PASS
#define RLGRU_CELL_SOURCE "fused_lstm.cpp"
#define RLGRU_CELL_OPS rlgru_fused_lstm
#include "kernel_cell.h"
#else  // RLGRU_KERNEL_PASS: the LSTM's gate math, compiled once per pass (kernel_pass.h comes first).

template <class O>
struct Cell {
  static constexpr const char* kName = "fused LSTM";
  static constexpr int kGates = 4, kStates = 2, kSaved = 5;  // i, f, g, o; h, c; i, f, g, o, tanh(c)
  static constexpr bool kSplitBias = false;  // b_ih + b_hh fold into the input projection: one dG for both sides
  using V = typename O::V;

  // The reset mask k zeroes h_prev through the recurrent products, and c_prev (prev[1], already masked).
  static RLGRU_INLINE void forward(V k, const V (&gx)[4], const V (&gh)[4], const V (&)[4], const V (&prev)[2],
                                   V (&next)[2], V (&save)[5]) {
    const V i = O::sigmoid(gx[0] + gh[0] * k);
    const V f = O::sigmoid(gx[1] + gh[1] * k);
    const V g = O::tanh(gx[2] + gh[2] * k);
    const V o = O::sigmoid(gx[3] + gh[3] * k);
    const V cn = f * prev[1] + i * g;
    const V tc = O::tanh(cn);
    set_blocks(next, o * tc, cn);
    set_blocks(save, i, f, g, o, tc);
  }

  // dc: the dL/dc_t arriving from step t+1. One gradient dG for both sides; the carry is dc_t * f_t, which flows
  // to c_{t-1}.
  static RLGRU_INLINE void backward(V dh, V dc, const V (&save)[5], const V (&prev)[2], V (&dg)[4], V (&)[4],
                                    V& carry) {
    const auto& [i, f, g, o, tc] = save;
    const V one = O::set1(1);
    const V dct = dc + dh * o * (one - tc * tc);
    set_blocks(dg, dct * g * i * (one - i), dct * prev[1] * f * (one - f), dct * i * (one - g * g),
               dh * tc * o * (one - o));
    carry = dct * f;
  }
};

#endif  // RLGRU_KERNEL_PASS
