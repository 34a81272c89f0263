// Fused single-layer LSTM for CPU with per-step episode-start resets (PyTorch's gate layout i, f, g, o;
// c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t)).
//
// Why: nn.LSTM on CPU is oneDNN's fused kernel, but it cannot zero the state of some envs in the middle of a
// sequence, so recurrent PPO has to cut training sequences at every episode start and pad them (early in
// training half the padded grid is padding). This kernel takes a per-step row mask keep[t, b] (0 zeroes h and c
// before step t) inside its time loop, so whole rollout lanes train in one pass. Design as fused_gru.cpp:
//  * forward: the input projection for all steps is one big GEMM (b_ih + b_hh folded into its bias); each step
//    is one register-tiled GEMM (h_{t-1} @ W_hh^T, W_hh pre-packed per chunk of hidden units) whose tile
//    epilogue applies the gates and the cell update in registers and saves i, f, g, o, tanh(c) for backward.
//    Tiny problems (rollout steps) skip the packing and use a BLAS call per step plus the same SIMD gate code.
//  * backward: the mirror image, one tiled GEMM per step (dG_t @ W_hh) whose epilogue already computes the gate
//    gradients of step t-1; dc flows between steps through a [B, H] scratch. Input and recurrent pre-activations
//    share one gradient dG (their biases are summed), so dX, dW_ih, dW_hh and the bias gradient are big GEMMs
//    over one transposed dG.
//
// Code paths: SIMD (float32; AVX-512F or AVX2+FMA picked at run time, each compiled by including this file into
// itself under `#pragma GCC target`) and generic (any floating dtype: at::mm per step and the same templated gate
// code on scalars; float64 gradcheck). Lane types, SIMD math, the buffer pool, packing and big-GEMM helpers are
// shared with the fused GRU in kernel_common.h.

#ifndef RLGRU_KERNEL_PASS

#include "kernel_common.h"  // part 1: headers and macros

namespace rlgru_fused_lstm {
namespace {

// Pointers of contiguous [T, B, ...] tensors for one layer's whole-sequence loops.
struct SeqArgs {
  int64_t T, B, H;
  const float* h0;       // [B, H]
  const float* c0;       // [B, H]
  const float* keep;     // [T, B] or nullptr
  const float* gx;       // [T, B, 4H]: W_ih x + b_ih + b_hh
  const float* wpack;    // W_hh packed for the forward or the backward tiles
  float* out;            // [T, B, H]: h
  float* cs;             // [T, B, H]: c
  float* save;           // [T, B, 5H]: i, f, g, o, tanh(c); nullptr when not training
  const float* dout;     // [T, B, H]
  const float* dh_last;  // [B, H] or nullptr
  const float* dc_last;  // [B, H] or nullptr
  float* dg;             // [T, B, 4H]: gradient of the gate pre-activations
  float* dcd;            // [B, H] scratch: dc_t * f_t
  float* dh0;            // [B, H]
  float* dc0;            // [B, H]
};

#define RLGRU_KERNEL_PASS 0
namespace scalar {
#include "fused_lstm.cpp"  // NOLINT(build/include): the kernel section below
}  // namespace scalar
#undef RLGRU_KERNEL_PASS

#if RLGRU_X86_SIMD
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define RLGRU_KERNEL_PASS 2
namespace avx2 {
#include "fused_lstm.cpp"  // NOLINT(build/include): the kernel section below
}  // namespace avx2
#undef RLGRU_KERNEL_PASS
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx2,fma")
#define RLGRU_KERNEL_PASS 3
namespace avx512 {
#include "fused_lstm.cpp"  // NOLINT(build/include): the kernel section below
}  // namespace avx512
#undef RLGRU_KERNEL_PASS
#pragma GCC pop_options
#endif

#define RLGRU_COMMON_HOST
#include "kernel_common.h"  // part 3: ISA detection, buffer pool, packing, big GEMMs, transposes
#undef RLGRU_COMMON_HOST

void run_forward(Isa isa, const SeqArgs& a) {
#if RLGRU_X86_SIMD
  if (isa == Isa::kAvx512) return avx512::fwd_seq(a);
  if (isa == Isa::kAvx2) return avx2::fwd_seq(a);
#endif
  TORCH_CHECK(false, "fused LSTM: no SIMD kernel for this CPU");
}

void run_gates_step(Isa isa, const SeqArgs& a, int64_t t, const float* gh) {
#if RLGRU_X86_SIMD
  if (isa == Isa::kAvx512) return avx512::fwd_gates_step(a, t, gh);
  if (isa == Isa::kAvx2) return avx2::fwd_gates_step(a, t, gh);
#endif
  TORCH_CHECK(false, "fused LSTM: no SIMD kernel for this CPU");
}

void run_backward(Isa isa, const SeqArgs& a) {
#if RLGRU_X86_SIMD
  if (isa == Isa::kAvx512) return avx512::bwd_seq(a);
  if (isa == Isa::kAvx2) return avx2::bwd_seq(a);
#endif
  TORCH_CHECK(false, "fused LSTM: no SIMD kernel for this CPU");
}

// ---------------------------------------------------------------------------------------------------------
// Generic path: at::mm per step, scalar gate code. Serves float64 and CPUs without AVX2.

template <typename T>
void fwd_generic(int64_t Tn, int64_t B, int64_t H, const at::Tensor& h0, const T* c0, const T* keep, const T* gx,
                 const at::Tensor& w_hh_t, at::Tensor& out, T* cs, T* save) {
  using O = scalar::Ops<T>;
  auto gh = at::empty({B, 4 * H}, out.options());
  const T* ghp = gh.template data_ptr<T>();
  T* outp = out.template data_ptr<T>();
  for (int64_t t = 0; t < Tn; ++t) {
    at::mm_out(gh, t == 0 ? h0 : out.select(0, t - 1), w_hh_t);
    const T* cprev = t == 0 ? c0 : cs + (t - 1) * B * H;
    for (int64_t b = 0; b < B; ++b) {
      const T kp = keep ? keep[t * B + b] : T(1);
      const T* g = ghp + b * 4 * H;
      const int64_t row = t * B + b;
      for (int64_t j = 0; j < H; ++j) {
        scalar::fwd_gates<O>(g[j], g[H + j], g[2 * H + j], g[3 * H + j], kp, cprev + b * H + j,
                             gx + row * 4 * H + j, outp + row * H + j, cs + row * H + j,
                             save ? save + row * 5 * H + j : nullptr, H, 1);
      }
    }
  }
}

template <typename T>
void bwd_generic(int64_t Tn, int64_t B, int64_t H, const T* c0, const T* keep, const T* cs, const T* save,
                 const T* dout, const T* dh_last, const T* dc_last, const at::Tensor& w_hh, at::Tensor& dg,
                 at::Tensor& dh0, at::Tensor& dc0) {
  using O = scalar::Ops<T>;
  auto dcd = at::empty({B, H}, w_hh.options());
  auto dhp = at::empty({B, H}, w_hh.options());
  T* dcdp = dcd.template data_ptr<T>();
  T* dhpp = dhp.template data_ptr<T>();
  T* dh_next = dh0.template data_ptr<T>();  // carries dL/dh_t between steps, ends as dL/dh0
  T* dc_next = dc0.template data_ptr<T>();  // same for dL/dc_t
  for (int64_t i = 0; i < B * H; ++i) {
    dh_next[i] = dh_last ? dh_last[i] : T(0);
    dc_next[i] = dc_last ? dc_last[i] : T(0);
  }
  T* dgp = dg.template data_ptr<T>();
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* cprev = t == 0 ? c0 : cs + (t - 1) * B * H;
    for (int64_t b = 0; b < B; ++b) {
      const T kp = keep ? keep[t * B + b] : T(1);
      const int64_t row = t * B + b;
      for (int64_t j = 0; j < H; ++j) {
        scalar::bwd_gates<O>(dout[row * H + j] + dh_next[b * H + j], dc_next[b * H + j], kp, cprev + b * H + j,
                             save + row * 5 * H + j, dgp + row * 4 * H + j, dcdp + b * H + j, H, 1);
      }
    }
    at::mm_out(dhp, dg.select(0, t), w_hh);
    for (int64_t b = 0; b < B; ++b) {
      const T kp = keep ? keep[t * B + b] : T(1);
      for (int64_t j = 0; j < H; ++j) {
        dh_next[b * H + j] = dhpp[b * H + j] * kp;
        dc_next[b * H + j] = dcdp[b * H + j] * kp;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Operators.

void check_inputs(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                  const at::Tensor& w_hh, const at::Tensor& b_ih, const at::Tensor& b_hh,
                  const std::optional<at::Tensor>& keep) {
  TORCH_CHECK(x.device().is_cpu(), "fused LSTM: CPU tensors only");
  TORCH_CHECK(x.dim() == 3 && x.size(0) >= 1, "fused LSTM: x must be [T>=1, B, I], got ", x.sizes());
  const int64_t B = x.size(1), I = x.size(2), H = w_hh.size(1);
  TORCH_CHECK(h0.sizes() == at::IntArrayRef({B, H}), "fused LSTM: h0 must be [B, H], got ", h0.sizes());
  TORCH_CHECK(c0.sizes() == at::IntArrayRef({B, H}), "fused LSTM: c0 must be [B, H], got ", c0.sizes());
  TORCH_CHECK(w_ih.sizes() == at::IntArrayRef({4 * H, I}), "fused LSTM: weight_ih must be [4H, I]");
  TORCH_CHECK(w_hh.sizes() == at::IntArrayRef({4 * H, H}), "fused LSTM: weight_hh must be [4H, H]");
  TORCH_CHECK(b_ih.sizes() == at::IntArrayRef({4 * H}) && b_hh.sizes() == at::IntArrayRef({4 * H}),
              "fused LSTM: biases must be [4H]");
  for (const auto* t : {&h0, &c0, &w_ih, &w_hh, &b_ih, &b_hh}) {
    TORCH_CHECK(t->scalar_type() == x.scalar_type(), "fused LSTM: all tensors must share x's dtype");
  }
  if (keep.has_value()) {
    TORCH_CHECK(keep->sizes() == at::IntArrayRef({x.size(0), B}) && keep->scalar_type() == x.scalar_type(),
                "fused LSTM: keep must be [T, B] with x's dtype");
  }
}

// Below this many time*batch rows the forward kernel skips packing W_hh.
constexpr int64_t kMinPackedRows = 64;

// mode 0: the widest SIMD this CPU has; 1: the generic code; 2: AVX2 even on an AVX-512 CPU (for tests).
Isa pick_isa(const at::Tensor& x, int64_t mode) {
  TORCH_CHECK(mode >= 0 && mode <= 2, "fused LSTM: mode must be 0, 1 or 2");
  if (mode == 1 || x.scalar_type() != at::kFloat) return Isa::kGeneric;
  if (mode == 2) {
    TORCH_CHECK(best_isa() != Isa::kGeneric, "fused LSTM: this CPU has no AVX2 kernel");
    return Isa::kAvx2;
  }
  return best_isa();
}

std::optional<at::Tensor> contiguous_opt(const std::optional<at::Tensor>& t) {
  return t.has_value() ? std::optional<at::Tensor>(t->contiguous()) : std::nullopt;
}

// Returns (out [T,B,H], h_last [B,H], c_last [B,H], cs [T,B,H] (every c_t), saved [T,B,5H] or empty).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> lstm_forward(
    const at::Tensor& x_, const at::Tensor& h0_, const at::Tensor& c0_, const at::Tensor& w_ih_,
    const at::Tensor& w_hh_, const at::Tensor& b_ih_, const at::Tensor& b_hh_, const std::optional<at::Tensor>& keep_,
    bool save, int64_t mode) {
  check_inputs(x_, h0_, c0_, w_ih_, w_hh_, b_ih_, b_hh_, keep_);
  const auto x = x_.contiguous(), h0 = h0_.contiguous(), c0 = c0_.contiguous();
  const auto w_ih = w_ih_.contiguous(), w_hh = w_hh_.contiguous();
  const auto keep = contiguous_opt(keep_);
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = w_hh.size(1);
  const auto gx = gemm_nt(x.view({T * B, I}), w_ih, b_ih_ + b_hh_).view({T, B, 4 * H});
  auto out = pooled_empty({T, B, H}, x.options());
  auto cs = pooled_empty({T, B, H}, x.options());
  at::Tensor saved = save ? pooled_empty({T, B, 5 * H}, x.options()) : at::empty({0}, x.options());
  const Isa isa = pick_isa(x, mode);
  if (isa == Isa::kGeneric) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rlgru_fused_lstm_forward", [&] {
      fwd_generic<scalar_t>(T, B, H, h0, c0.data_ptr<scalar_t>(), keep ? keep->data_ptr<scalar_t>() : nullptr,
                            gx.data_ptr<scalar_t>(), w_hh.t(), out, cs.data_ptr<scalar_t>(),
                            save ? saved.data_ptr<scalar_t>() : nullptr);
    });
  } else {
    SeqArgs a{};
    a.T = T;
    a.B = B;
    a.H = H;
    a.h0 = h0.data_ptr<float>();
    a.c0 = c0.data_ptr<float>();
    a.keep = keep ? keep->data_ptr<float>() : nullptr;
    a.gx = gx.data_ptr<float>();
    a.out = out.data_ptr<float>();
    a.cs = cs.data_ptr<float>();
    a.save = save ? saved.data_ptr<float>() : nullptr;
    if (T * B < kMinPackedRows) {
      // Rollout steps: a BLAS call per step beats packing W_hh for the register-tiled kernel.
      auto gh = at::empty({B, 4 * H}, x.options());
      const auto w_hh_t = w_hh.t();
      for (int64_t t = 0; t < T; ++t) {
        at::mm_out(gh, t == 0 ? h0 : out.select(0, t - 1), w_hh_t);
        run_gates_step(isa, a, t, gh.data_ptr<float>());
      }
    } else {
      const auto packed = pack_forward(w_hh, 4, H, lanes(isa));
      a.wpack = packed.data_ptr<float>();
      run_forward(isa, a);
    }
  }
  return {out, out.select(0, T - 1).clone(), cs.select(0, T - 1).clone(), cs, saved};
}

// Returns (dx, dh0, dc0, dw_ih, dw_hh, db); db is the gradient of both biases. An input whose gradient is not
// needed gets an empty tensor (need_state covers h0 and c0).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> lstm_backward(
    const at::Tensor& grad_out_, const std::optional<at::Tensor>& grad_h_, const std::optional<at::Tensor>& grad_c_,
    const at::Tensor& x_, const at::Tensor& h0_, const at::Tensor& c0_, const at::Tensor& w_ih_,
    const at::Tensor& w_hh_, const at::Tensor& out_, const at::Tensor& cs_, const at::Tensor& saved_,
    const std::optional<at::Tensor>& keep_, bool need_x, bool need_state, bool need_w, int64_t mode) {
  const auto x = x_.contiguous(), h0 = h0_.contiguous(), c0 = c0_.contiguous();
  const auto w_ih = w_ih_.contiguous(), w_hh = w_hh_.contiguous();
  const auto out = out_.contiguous(), cs = cs_.contiguous(), saved = saved_.contiguous();
  const auto dout = grad_out_.contiguous();
  const auto keep = contiguous_opt(keep_), dh_last = contiguous_opt(grad_h_), dc_last = contiguous_opt(grad_c_);
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = w_hh.size(1);
  TORCH_CHECK(saved.sizes() == at::IntArrayRef({T, B, 5 * H}), "fused LSTM backward: forward did not save");
  TORCH_CHECK(cs.sizes() == at::IntArrayRef({T, B, H}), "fused LSTM backward: bad cell-state shape");
  TORCH_CHECK(dout.sizes() == at::IntArrayRef({T, B, H}), "fused LSTM backward: bad grad_out shape");
  auto dg = pooled_empty({T, B, 4 * H}, x.options());
  auto dh0 = at::empty({B, H}, x.options());
  auto dc0 = at::empty({B, H}, x.options());
  const Isa isa = pick_isa(x, mode);
  if (isa == Isa::kGeneric) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rlgru_fused_lstm_backward", [&] {
      bwd_generic<scalar_t>(T, B, H, c0.data_ptr<scalar_t>(), keep ? keep->data_ptr<scalar_t>() : nullptr,
                            cs.data_ptr<scalar_t>(), saved.data_ptr<scalar_t>(), dout.data_ptr<scalar_t>(),
                            dh_last ? dh_last->data_ptr<scalar_t>() : nullptr,
                            dc_last ? dc_last->data_ptr<scalar_t>() : nullptr, w_hh, dg, dh0, dc0);
    });
  } else {
    const auto packed = pack_backward(w_hh, 4, H, lanes(isa));
    auto dcd = at::empty({B, H}, x.options());
    SeqArgs a{};
    a.T = T;
    a.B = B;
    a.H = H;
    a.h0 = h0.data_ptr<float>();
    a.c0 = c0.data_ptr<float>();
    a.keep = keep ? keep->data_ptr<float>() : nullptr;
    a.wpack = packed.data_ptr<float>();
    a.out = const_cast<float*>(out.data_ptr<float>());
    a.cs = const_cast<float*>(cs.data_ptr<float>());
    a.save = const_cast<float*>(saved.data_ptr<float>());
    a.dout = dout.data_ptr<float>();
    a.dh_last = dh_last ? dh_last->data_ptr<float>() : nullptr;
    a.dc_last = dc_last ? dc_last->data_ptr<float>() : nullptr;
    a.dg = dg.data_ptr<float>();
    a.dcd = dcd.data_ptr<float>();
    a.dh0 = dh0.data_ptr<float>();
    a.dc0 = dc0.data_ptr<float>();
    run_backward(isa, a);
  }
  const auto empty = at::empty({0}, x.options());
  at::Tensor dx = empty, dw_ih = empty, dw_hh = empty, db = empty;
  const auto dg2 = dg.view({T * B, 4 * H}), x2 = x.view({T * B, I});
  if (need_x) dx = gemm_nt(dg2, w_ih.t().contiguous(), std::nullopt).view({T, B, I});
  if (need_w) {
    // dW = dG^T @ input, a reduction over the long time*batch axis. oneDNN wants that axis contiguous in both
    // operands, hence the transposes (dG's once, for both weights; its column sums are the bias gradient);
    // h_prev is what each step saw: h0 then the outputs, zeroed at resets.
    if (isa != Isa::kGeneric && onednn_usable(x)) {
      auto hprev_t = pooled_empty({H, T * B}, x.options());
      const float* kp = keep ? keep->data_ptr<float>() : nullptr;
      transpose_into(isa, h0.data_ptr<float>(), B, H, hprev_t.data_ptr<float>(), T * B, kp);
      if (T > 1) {
        transpose_into(isa, out.data_ptr<float>(), (T - 1) * B, H, hprev_t.data_ptr<float>() + B, T * B,
                       kp ? kp + B : nullptr);
      }
      const auto dg_t = transposed(isa, dg2, &db);
      dw_ih = gemm_nt(dg_t, transposed(isa, x2), std::nullopt);
      dw_hh = gemm_nt(dg_t, hprev_t, std::nullopt);
    } else {
      auto hprev = at::cat({h0.unsqueeze(0), out.narrow(0, 0, T - 1)}, 0);
      if (keep.has_value()) hprev.mul_(keep->unsqueeze(-1));
      dw_ih = at::mm(dg2.t(), x2);
      dw_hh = at::mm(dg2.t(), hprev.view({T * B, H}));
      db = dg2.sum(0);
    }
  }
  return {dx, need_state ? dh0 : empty, need_state ? dc0 : empty, dw_ih, dw_hh, db};
}

std::string isa_name() {
  switch (best_isa()) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "generic";
  }
}

void release_cached_memory() { BufferPool::instance().clear(); }

bool onednn_gemm() { return onednn_linear_op() != nullptr && at::globalContext().userEnabledMkldnn(); }

}  // namespace
}  // namespace rlgru_fused_lstm

TORCH_LIBRARY(rlgru_fused_lstm, m) {
  m.def(
      "forward(Tensor x, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, Tensor? keep, "
      "bool save, int mode) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
      &rlgru_fused_lstm::lstm_forward);
  m.def(
      "backward(Tensor grad_out, Tensor? grad_h, Tensor? grad_c, Tensor x, Tensor h0, Tensor c0, Tensor w_ih, "
      "Tensor w_hh, Tensor out, Tensor cs, Tensor saved, Tensor? keep, bool need_x, bool need_state, bool need_w, "
      "int mode) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)",
      &rlgru_fused_lstm::lstm_backward);
  m.def("isa() -> str", &rlgru_fused_lstm::isa_name);
  m.def("onednn_gemm() -> bool", &rlgru_fused_lstm::onednn_gemm);
  m.def("release_cached_memory() -> ()", &rlgru_fused_lstm::release_cached_memory);
}

#else  // RLGRU_KERNEL_PASS: the kernel section, compiled once per pass inside its own namespace.

#include "kernel_common.h"  // part 2: lane types (Ops), SIMD transposes, run_steps

// ---------------------------------------------------------------------------------------------------------
// Gate code shared by all paths. Pointers are already offset to (row b, first unit); H strides the gate blocks.

// Forward: ai, af, ag, ao are h_prev @ W_hh^T for the four gates with the *unmasked* h_prev; kp (0 or 1) applies
// the episode-start reset to both h_prev (through the products) and c_prev. gx holds W_ih x + b_ih + b_hh.
template <class O>
RLGRU_INLINE void fwd_gates(typename O::V ai, typename O::V af, typename O::V ag, typename O::V ao,
                            typename O::S kp, const typename O::S* cprev, const typename O::S* gx,
                            typename O::S* h, typename O::S* c, typename O::S* save, int64_t H, int nv) {
  using V = typename O::V;
  const V k = O::set1(kp);
  const V i = O::sigmoid(O::loadn(gx, nv) + ai * k);
  const V f = O::sigmoid(O::loadn(gx + H, nv) + af * k);
  const V g = O::tanh(O::loadn(gx + 2 * H, nv) + ag * k);
  const V o = O::sigmoid(O::loadn(gx + 3 * H, nv) + ao * k);
  const V cn = f * (O::loadn(cprev, nv) * k) + i * g;
  const V tc = O::tanh(cn);
  O::storen(h, o * tc, nv);
  O::storen(c, cn, nv);
  if (save != nullptr) {
    O::storen(save, i, nv);
    O::storen(save + H, f, nv);
    O::storen(save + 2 * H, g, nv);
    O::storen(save + 3 * H, o, nv);
    O::storen(save + 4 * H, tc, nv);
  }
}

// Backward through one step given dL/dh_t (dh) and the dL/dc_t arriving from step t+1 (dc): writes the gate
// pre-activation gradients dg and the direct term dc_t * f_t that flows to c_{t-1} (masked by the caller).
template <class O>
RLGRU_INLINE void bwd_gates(typename O::V dh, typename O::V dc, typename O::S kp, const typename O::S* cprev,
                            const typename O::S* save, typename O::S* dg, typename O::S* dcd, int64_t H, int nv) {
  using V = typename O::V;
  const V one = O::set1(1);
  const V i = O::loadn(save, nv);
  const V f = O::loadn(save + H, nv);
  const V g = O::loadn(save + 2 * H, nv);
  const V o = O::loadn(save + 3 * H, nv);
  const V tc = O::loadn(save + 4 * H, nv);
  const V dct = dc + dh * o * (one - tc * tc);
  const V cp = O::loadn(cprev, nv) * O::set1(kp);
  O::storen(dg, dct * g * i * (one - i), nv);
  O::storen(dg + H, dct * cp * f * (one - f), nv);
  O::storen(dg + 2 * H, dct * i * (one - g * g), nv);
  O::storen(dg + 3 * H, dh * tc * o * (one - o), nv);
  O::storen(dcd, dct * f, nv);
}

#if RLGRU_KERNEL_PASS != 0
// ---------------------------------------------------------------------------------------------------------
// SIMD tiles (float32). A tile is MR batch rows times one or more chunks of W hidden units.

using V = Ops::V;
constexpr int W = Ops::W;
// Register tiles: AVX-512 has 32 vector registers, AVX2 16.
constexpr int kFwdRows = W == 16 ? 6 : 3;    // rows x 4 gates: 24 / 12 accumulators
constexpr int kBwdRows = W == 16 ? 8 : 6;    // times kBwdChunks: 24 / 12 accumulators
constexpr int kBwdChunks = W == 16 ? 3 : 2;

struct FwdStep {
  const float* hprev;  // [B, H], unmasked
  const float* cprev;  // [B, H], unmasked
  const float* keep;   // [B] or nullptr
  const float* gx;     // [B, 4H]
  const float* wpack;  // [chunks][H][4][W]
  float* out;          // [B, H]
  float* c;            // [B, H]
  float* save;         // [B, 5H] or nullptr
  int64_t H;
};

template <int MR>
RLGRU_INLINE void fwd_tile(const FwdStep& s, int64_t b0, int64_t c) {
  const int64_t H = s.H;
  const float* wp = s.wpack + c * H * 4 * W;
  const float* hp = s.hprev + b0 * H;
  V acc_i[MR], acc_f[MR], acc_g[MR], acc_o[MR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) acc_i[m] = acc_f[m] = acc_g[m] = acc_o[m] = Ops::set1(0.0f);
  for (int64_t k = 0; k < H; ++k, wp += 4 * W) {
    const V w0 = Ops::load(wp), w1 = Ops::load(wp + W), w2 = Ops::load(wp + 2 * W), w3 = Ops::load(wp + 3 * W);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const V a = Ops::set1(hp[m * H + k]);
      acc_i[m] = Ops::fma(a, w0, acc_i[m]);
      acc_f[m] = Ops::fma(a, w1, acc_f[m]);
      acc_g[m] = Ops::fma(a, w2, acc_g[m]);
      acc_o[m] = Ops::fma(a, w3, acc_o[m]);
    }
  }
  const int64_t u0 = c * W;
  const int nv = static_cast<int>(std::min<int64_t>(W, H - u0));
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    const int64_t b = b0 + m;
    fwd_gates<Ops>(acc_i[m], acc_f[m], acc_g[m], acc_o[m], s.keep ? s.keep[b] : 1.0f, s.cprev + b * H + u0,
                   s.gx + b * 4 * H + u0, s.out + b * H + u0, s.c + b * H + u0,
                   s.save ? s.save + b * 5 * H + u0 : nullptr, H, nv);
  }
}

// One step over all rows, chunk-major so a chunk's packed weights stay in cache across row tiles.
void fwd_step(const FwdStep& s, int64_t B, int64_t c_begin, int64_t c_end) {
  constexpr int MR = kFwdRows;
  for (int64_t c = c_begin; c < c_end; ++c) {
    int64_t b0 = 0;
    for (; b0 + MR <= B; b0 += MR) fwd_tile<MR>(s, b0, c);
    for (; b0 + 4 <= B; b0 += 4) fwd_tile<4>(s, b0, c);
    for (; b0 + 2 <= B; b0 += 2) fwd_tile<2>(s, b0, c);
    for (; b0 < B; ++b0) fwd_tile<1>(s, b0, c);
  }
}

struct BwdStep {
  // GEMM part, step t: dL/dh_{t-1} (through step t) = keep_t * (dg_t @ W_hh), dL/dc_{t-1} = keep_t * dcd
  const float* dg_t;    // [B, 4H]
  const float* keep_t;  // [B] or nullptr
  const float* wpack;   // [chunks][4H][W]
  float* dcd;           // [B, H]: dc_t * f_t in, dc_{t-1} * f_{t-1} out
  // gate part, step s = t - 1 (or, without it, dh0 and dc0)
  const float* dout_s;   // [B, H]
  const float* keep_s;   // [B] or nullptr
  const float* cprev_s;  // [B, H], unmasked
  const float* save_s;   // [B, 5H]
  float* dg_s;           // [B, 4H]
  float* dh0;            // [B, H]
  float* dc0;            // [B, H]
  int64_t H;
};

template <int MR, int NC, bool GATES>
RLGRU_INLINE void bwd_tile(const BwdStep& s, int64_t b0, int64_t c0) {
  static_assert(NC >= 1 && NC <= 3, "one to three chunks per tile");
  const int64_t H = s.H, K = 4 * H;
  const float* wp0 = s.wpack + c0 * K * W;
  const float* wp1 = wp0 + K * W;
  const float* wp2 = wp1 + K * W;
  const float* a = s.dg_t + b0 * K;
  // One accumulator array per chunk, indexed by constants only, so that they stay in registers.
  V acc0[MR], acc1[MR], acc2[MR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) acc0[m] = acc1[m] = acc2[m] = Ops::set1(0.0f);
  for (int64_t k = 0; k < K; ++k) {
    const V w0 = Ops::load(wp0 + k * W);
    const V w1 = NC > 1 ? Ops::load(wp1 + k * W) : w0;
    const V w2 = NC > 2 ? Ops::load(wp2 + k * W) : w0;
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const V av = Ops::set1(a[m * K + k]);
      acc0[m] = Ops::fma(av, w0, acc0[m]);
      if constexpr (NC > 1) acc1[m] = Ops::fma(av, w1, acc1[m]);
      if constexpr (NC > 2) acc2[m] = Ops::fma(av, w2, acc2[m]);
    }
  }
#pragma GCC unroll 3
  for (int j = 0; j < NC; ++j) {
    const int64_t u0 = (c0 + j) * W;
    const int nv = static_cast<int>(std::min<int64_t>(W, H - u0));
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const int64_t b = b0 + m;
      float* dcd = s.dcd + b * H + u0;
      const V k = Ops::set1(s.keep_t ? s.keep_t[b] : 1.0f);
      const V acc = j == 0 ? acc0[m] : (j == 1 ? acc1[m] : acc2[m]);
      const V dh_prev = acc * k;
      const V dc_prev = Ops::loadn(dcd, nv) * k;
      if constexpr (GATES) {
        const V dh = dh_prev + Ops::loadn(s.dout_s + b * H + u0, nv);
        bwd_gates<Ops>(dh, dc_prev, s.keep_s ? s.keep_s[b] : 1.0f, s.cprev_s + b * H + u0,
                       s.save_s + b * 5 * H + u0, s.dg_s + b * 4 * H + u0, dcd, H, nv);
      } else {
        Ops::storen(s.dh0 + b * H + u0, dh_prev, nv);
        Ops::storen(s.dc0 + b * H + u0, dc_prev, nv);
      }
    }
  }
}

template <int NC, bool GATES>
RLGRU_INLINE void bwd_rows(const BwdStep& s, int64_t B, int64_t c0) {
  constexpr int MR = kBwdRows;
  int64_t b0 = 0;
  for (; b0 + MR <= B; b0 += MR) bwd_tile<MR, NC, GATES>(s, b0, c0);
  for (; b0 + 4 <= B; b0 += 4) bwd_tile<4, NC, GATES>(s, b0, c0);
  for (; b0 + 2 <= B; b0 += 2) bwd_tile<2, NC, GATES>(s, b0, c0);
  for (; b0 < B; ++b0) bwd_tile<1, NC, GATES>(s, b0, c0);
}

template <bool GATES>
void bwd_step(const BwdStep& s, int64_t B, int64_t c_begin, int64_t c_end) {
  constexpr int NC = kBwdChunks;
  int64_t c = c_begin;
  for (; c + NC <= c_end; c += NC) bwd_rows<NC, GATES>(s, B, c);
  if (c_end - c == 2) bwd_rows<2, GATES>(s, B, c);
  if (c_end - c == 1) bwd_rows<1, GATES>(s, B, c);
}

// Groups are chunks of W hidden units (all batch rows).
void fwd_seq(const SeqArgs& a) {
  const int64_t H = a.H, B = a.B;
  const int64_t nchunks = (H + W - 1) / W;
  run_steps(a.T, nchunks, [&](int64_t t, int64_t c) {
    const FwdStep s{t == 0 ? a.h0 : a.out + (t - 1) * B * H,
                    t == 0 ? a.c0 : a.cs + (t - 1) * B * H,
                    a.keep ? a.keep + t * B : nullptr,
                    a.gx + t * B * 4 * H,
                    a.wpack,
                    a.out + t * B * H,
                    a.cs + t * B * H,
                    a.save ? a.save + t * B * 5 * H : nullptr,
                    H};
    fwd_step(s, B, c, c + 1);
  });
}

// Gates of step t from gh = h_prev @ W_hh^T [B, 4H] computed elsewhere (small problems, where packing W_hh
// would cost more than the GEMM).
void fwd_gates_step(const SeqArgs& a, int64_t t, const float* gh) {
  const int64_t H = a.H, B = a.B;
  const float* cprev = t == 0 ? a.c0 : a.cs + (t - 1) * B * H;
  for (int64_t b = 0; b < B; ++b) {
    const float* g = gh + b * 4 * H;
    const int64_t row = t * B + b;
    const float kp = a.keep ? a.keep[row] : 1.0f;
    for (int64_t u0 = 0; u0 < H; u0 += W) {
      const int nv = static_cast<int>(std::min<int64_t>(W, H - u0));
      fwd_gates<Ops>(Ops::loadn(g + u0, nv), Ops::loadn(g + H + u0, nv), Ops::loadn(g + 2 * H + u0, nv),
                     Ops::loadn(g + 3 * H + u0, nv), kp, cprev + b * H + u0, a.gx + row * 4 * H + u0,
                     a.out + row * H + u0, a.cs + row * H + u0, a.save ? a.save + row * 5 * H + u0 : nullptr, H,
                     nv);
    }
  }
}

// Step i = 0 is a plain gate pass for t = T-1 (its dL/dh comes from the outputs and h_last, its dL/dc from
// c_last alone); step i = 1..T runs the GEMM of t = T-i, whose epilogue does the gate pass of t-1 (or writes dh0
// and dc0 for t = 0). Groups are kBwdChunks chunks of W hidden units.
void bwd_seq(const SeqArgs& a) {
  const int64_t H = a.H, B = a.B, T = a.T;
  const int64_t nchunks = (H + W - 1) / W;
  const int64_t ngroups = (nchunks + kBwdChunks - 1) / kBwdChunks;
  run_steps(T + 1, ngroups, [&](int64_t i, int64_t g) {
    const int64_t t = T - i;  // the GEMM's step; gates run for t - 1
    const int64_t c0 = g * kBwdChunks, c1 = std::min(nchunks, c0 + kBwdChunks);
    BwdStep s{};
    s.H = H;
    s.wpack = a.wpack;
    s.dcd = a.dcd;
    s.dh0 = a.dh0;
    s.dc0 = a.dc0;
    if (t >= 1) {
      const int64_t u = t - 1;
      s.dout_s = a.dout + u * B * H;
      s.keep_s = a.keep ? a.keep + u * B : nullptr;
      s.cprev_s = u == 0 ? a.c0 : a.cs + (u - 1) * B * H;
      s.save_s = a.save + u * B * 5 * H;
      s.dg_s = a.dg + u * B * 4 * H;
    }
    if (i == 0) {
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t u0 = c0 * W; u0 < std::min(H, c1 * W); u0 += W) {
          const int nv = static_cast<int>(std::min<int64_t>(W, H - u0));
          V dh = Ops::loadn(s.dout_s + b * H + u0, nv);
          if (a.dh_last != nullptr) dh = dh + Ops::loadn(a.dh_last + b * H + u0, nv);
          const V dc = a.dc_last != nullptr ? Ops::loadn(a.dc_last + b * H + u0, nv) : Ops::set1(0.0f);
          bwd_gates<Ops>(dh, dc, s.keep_s ? s.keep_s[b] : 1.0f, s.cprev_s + b * H + u0, s.save_s + b * 5 * H + u0,
                         s.dg_s + b * 4 * H + u0, s.dcd + b * H + u0, H, nv);
        }
      }
      return;
    }
    s.dg_t = a.dg + t * B * 4 * H;
    s.keep_t = a.keep ? a.keep + t * B : nullptr;
    if (t >= 1) {
      bwd_step<true>(s, B, c0, c1);
    } else {
      bwd_step<false>(s, B, c0, c1);
    }
  });
}
#endif  // RLGRU_KERNEL_PASS != 0

#endif  // RLGRU_KERNEL_PASS
