// Fused single-layer GRU for CPU (PyTorch's gate layout r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))).
//
// Why: PyTorch ships oneDNN's fused LSTM on CPU but runs nn.GRU as a chain of small ATen ops per step, so a
// GRU, which does 3/4 of an LSTM's arithmetic, ends up several times slower. Here:
//  * forward: the input projection for all steps is one big GEMM; each step is one register-tiled GEMM
//    (h_{t-1} @ W_hh^T, W_hh pre-packed per chunk of hidden units) whose tile epilogue applies the gates in
//    registers and saves r, z, n and W_hn h + b_hn for backward. Tiny problems (rollout steps) skip the packing
//    and use a BLAS call per step plus the same SIMD gate code.
//  * backward: the mirror image, one tiled GEMM per step (dGh_t @ W_hh) whose epilogue already computes the
//    gate gradients of step t-1; then dX and the weight gradients are big GEMMs over all steps at once.
//  * big GEMMs go to oneDNN when PyTorch has it (see gemm_nt), else to at::mm.
//  * episode-start resets are a per-step row mask keep[t, b] (0 zeroes h_prev before step t) applied inside
//    the loop, so sequences with resets run in one pass.
//
// Code paths:
//  * SIMD (float32; x86-64 with AVX-512F or AVX2+FMA, picked at run time). The file is compiled with portable
//    flags; the kernel section at the bottom is compiled once per ISA under `#pragma GCC target` by including
//    this file into itself (one source file ships, one compiler run builds every variant), so nothing outside
//    those kernels assumes more than baseline x86-64.
//  * generic (any floating dtype, any CPU or compiler): at::mm per step plus the *same* templated gate code on
//    scalars. It serves float64 (gradcheck) and machines without those ISAs.
//
// The lane types, SIMD math, transposes, buffer pool, weight packing and big-GEMM helpers are shared with the
// fused LSTM and live in kernel_common.h.

#ifndef RLGRU_KERNEL_PASS

#include "kernel_common.h"  // part 1: headers and macros

namespace rlgru_fused_gru {
namespace {

// Pointers of contiguous [T, B, ...] tensors for one layer's whole-sequence loops.
struct SeqArgs {
  int64_t T, B, H;
  const float* h0;       // [B, H]
  const float* keep;     // [T, B] or nullptr
  const float* gx;       // [T, B, 3H]: W_ih x + b_ih
  const float* bhh;      // [3H]
  const float* wpack;    // W_hh packed for the forward or the backward tiles
  float* out;            // [T, B, H]
  float* save;           // [T, B, 4H]: r, z, n, W_hn h + b_hn; nullptr when not training
  const float* dout;     // [T, B, H]
  const float* dh_last;  // [B, H] or nullptr
  float* dgx;            // [T, B, 3H]: gradient of the input-side pre-activations
  float* dgh;            // [T, B, 3H]: gradient of W_hh h_prev (+ b_hh)
  float* dhd;            // [B, H] scratch: dh_t * z_t
  float* dh0;            // [B, H]
};

#define RLGRU_KERNEL_PASS 0
namespace scalar {
#include "fused_gru.cpp"  // NOLINT(build/include): the kernel section below
}  // namespace scalar
#undef RLGRU_KERNEL_PASS

#if RLGRU_X86_SIMD
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define RLGRU_KERNEL_PASS 2
namespace avx2 {
#include "fused_gru.cpp"  // NOLINT(build/include): the kernel section below
}  // namespace avx2
#undef RLGRU_KERNEL_PASS
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx2,fma")
#define RLGRU_KERNEL_PASS 3
namespace avx512 {
#include "fused_gru.cpp"  // NOLINT(build/include): the kernel section below
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
  TORCH_CHECK(false, "fused GRU: no SIMD kernel for this CPU");
}

void run_gates_step(Isa isa, const SeqArgs& a, int64_t t, const float* gh) {
#if RLGRU_X86_SIMD
  if (isa == Isa::kAvx512) return avx512::fwd_gates_step(a, t, gh);
  if (isa == Isa::kAvx2) return avx2::fwd_gates_step(a, t, gh);
#endif
  TORCH_CHECK(false, "fused GRU: no SIMD kernel for this CPU");
}

void run_backward(Isa isa, const SeqArgs& a) {
#if RLGRU_X86_SIMD
  if (isa == Isa::kAvx512) return avx512::bwd_seq(a);
  if (isa == Isa::kAvx2) return avx2::bwd_seq(a);
#endif
  TORCH_CHECK(false, "fused GRU: no SIMD kernel for this CPU");
}


// ---------------------------------------------------------------------------------------------------------
// Generic path: at::mm per step, scalar gate code. Serves float64 and CPUs without AVX2.

template <typename T>
void fwd_generic(int64_t Tn, int64_t B, int64_t H, const at::Tensor& h0, const T* keep, const T* gx,
                 const T* bhh, const at::Tensor& w_hh_t, at::Tensor& out, T* save) {
  using O = scalar::Ops<T>;
  auto gh = at::empty({B, 3 * H}, out.options());
  const T* ghp = gh.template data_ptr<T>();
  T* outp = out.template data_ptr<T>();
  for (int64_t t = 0; t < Tn; ++t) {
    const at::Tensor hprev_t = t == 0 ? h0 : out.select(0, t - 1);
    at::mm_out(gh, hprev_t, w_hh_t);
    const T* hprev = hprev_t.template data_ptr<T>();
    for (int64_t b = 0; b < B; ++b) {
      const T kp = keep ? keep[t * B + b] : T(1);
      const T* g = ghp + b * 3 * H;
      for (int64_t j = 0; j < H; ++j) {
        scalar::fwd_gates<O>(g[j], g[H + j], g[2 * H + j], kp, hprev + b * H + j, gx + (t * B + b) * 3 * H + j,
                             bhh[j], bhh[H + j], bhh[2 * H + j], outp + (t * B + b) * H + j,
                             save ? save + (t * B + b) * 4 * H + j : nullptr, H, 1);
      }
    }
  }
}

template <typename T>
void bwd_generic(int64_t Tn, int64_t B, int64_t H, const T* h0, const T* keep, const T* out, const T* save,
                 const T* dout, const T* dh_last, const at::Tensor& w_hh, at::Tensor& dgx, at::Tensor& dgh,
                 at::Tensor& dh0) {
  using O = scalar::Ops<T>;
  auto dhd = at::zeros({B, H}, w_hh.options());
  auto dhp = at::empty({B, H}, w_hh.options());
  T* dhdp = dhd.template data_ptr<T>();
  T* dhpp = dhp.template data_ptr<T>();
  T* dh_next = dh0.template data_ptr<T>();  // carries dL/dh_t between steps, ends as dL/dh0
  for (int64_t i = 0; i < B * H; ++i) dh_next[i] = dh_last ? dh_last[i] : T(0);
  T* dgxp = dgx.template data_ptr<T>();
  T* dghp = dgh.template data_ptr<T>();
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* hprev = t == 0 ? h0 : out + (t - 1) * B * H;
    for (int64_t b = 0; b < B; ++b) {
      const T kp = keep ? keep[t * B + b] : T(1);
      for (int64_t j = 0; j < H; ++j) {
        const T dh = dout[(t * B + b) * H + j] + dh_next[b * H + j];
        scalar::bwd_gates<O>(dh, kp, hprev + b * H + j, save + (t * B + b) * 4 * H + j,
                             dgxp + (t * B + b) * 3 * H + j, dghp + (t * B + b) * 3 * H + j, dhdp + b * H + j, H, 1);
      }
    }
    at::mm_out(dhp, dgh.select(0, t), w_hh);
    for (int64_t b = 0; b < B; ++b) {
      const T kp = keep ? keep[t * B + b] : T(1);
      for (int64_t j = 0; j < H; ++j) dh_next[b * H + j] = (dhpp[b * H + j] + dhdp[b * H + j]) * kp;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Operators.

void check_inputs(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& w_ih, const at::Tensor& w_hh,
                  const at::Tensor& b_ih, const at::Tensor& b_hh, const std::optional<at::Tensor>& keep) {
  TORCH_CHECK(x.device().is_cpu(), "fused GRU: CPU tensors only");
  TORCH_CHECK(x.dim() == 3 && x.size(0) >= 1, "fused GRU: x must be [T>=1, B, I], got ", x.sizes());
  const int64_t B = x.size(1), I = x.size(2), H = w_hh.size(1);
  TORCH_CHECK(h0.sizes() == at::IntArrayRef({B, H}), "fused GRU: h0 must be [B, H], got ", h0.sizes());
  TORCH_CHECK(w_ih.sizes() == at::IntArrayRef({3 * H, I}), "fused GRU: weight_ih must be [3H, I]");
  TORCH_CHECK(w_hh.sizes() == at::IntArrayRef({3 * H, H}), "fused GRU: weight_hh must be [3H, H]");
  TORCH_CHECK(b_ih.sizes() == at::IntArrayRef({3 * H}) && b_hh.sizes() == at::IntArrayRef({3 * H}),
              "fused GRU: biases must be [3H]");
  for (const auto* t : {&h0, &w_ih, &w_hh, &b_ih, &b_hh}) {
    TORCH_CHECK(t->scalar_type() == x.scalar_type(), "fused GRU: all tensors must share x's dtype");
  }
  if (keep.has_value()) {
    TORCH_CHECK(keep->sizes() == at::IntArrayRef({x.size(0), B}) && keep->scalar_type() == x.scalar_type(),
                "fused GRU: keep must be [T, B] with x's dtype");
  }
}

// Below this many time*batch rows the forward kernel skips packing W_hh.
constexpr int64_t kMinPackedRows = 64;

// mode 0: the widest SIMD this CPU has; 1: the generic code; 2: AVX2 even on an AVX-512 CPU (for tests).
Isa pick_isa(const at::Tensor& x, int64_t mode) {
  TORCH_CHECK(mode >= 0 && mode <= 2, "fused GRU: mode must be 0, 1 or 2");
  if (mode == 1 || x.scalar_type() != at::kFloat) return Isa::kGeneric;
  if (mode == 2) {
    TORCH_CHECK(best_isa() != Isa::kGeneric, "fused GRU: this CPU has no AVX2 kernel");
    return Isa::kAvx2;
  }
  return best_isa();
}

// Returns (out [T,B,H], h_last [B,H], saved [T,B,4H] or empty); see pick_isa for `mode`.
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_forward(const at::Tensor& x_, const at::Tensor& h0_,
                                                           const at::Tensor& w_ih_, const at::Tensor& w_hh_,
                                                           const at::Tensor& b_ih_, const at::Tensor& b_hh_,
                                                           const std::optional<at::Tensor>& keep_, bool save,
                                                           int64_t mode) {
  check_inputs(x_, h0_, w_ih_, w_hh_, b_ih_, b_hh_, keep_);
  const auto x = x_.contiguous(), h0 = h0_.contiguous(), w_ih = w_ih_.contiguous(), w_hh = w_hh_.contiguous();
  const auto b_ih = b_ih_.contiguous(), b_hh = b_hh_.contiguous();
  const std::optional<at::Tensor> keep = keep_.has_value() ? std::optional<at::Tensor>(keep_->contiguous())
                                                           : std::nullopt;
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = w_hh.size(1);
  const auto gx = gemm_nt(x.view({T * B, I}), w_ih, b_ih).view({T, B, 3 * H});
  auto out = pooled_empty({T, B, H}, x.options());
  at::Tensor saved = save ? pooled_empty({T, B, 4 * H}, x.options()) : at::empty({0}, x.options());
  const Isa isa = pick_isa(x, mode);
  if (isa == Isa::kGeneric) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rlgru_fused_gru_forward", [&] {
      fwd_generic<scalar_t>(T, B, H, h0, keep ? keep->data_ptr<scalar_t>() : nullptr, gx.data_ptr<scalar_t>(),
                            b_hh.data_ptr<scalar_t>(), w_hh.t(), out, save ? saved.data_ptr<scalar_t>() : nullptr);
    });
    return {out, out.select(0, T - 1).clone(), saved};
  }
  SeqArgs a{};
  a.T = T;
  a.B = B;
  a.H = H;
  a.h0 = h0.data_ptr<float>();
  a.keep = keep ? keep->data_ptr<float>() : nullptr;
  a.gx = gx.data_ptr<float>();
  a.bhh = b_hh.data_ptr<float>();
  a.out = out.data_ptr<float>();
  a.save = save ? saved.data_ptr<float>() : nullptr;
  if (T * B < kMinPackedRows) {
    // Rollout steps: a BLAS call per step beats packing W_hh for the register-tiled kernel.
    auto gh = at::empty({B, 3 * H}, x.options());
    const auto w_hh_t = w_hh.t();
    for (int64_t t = 0; t < T; ++t) {
      at::mm_out(gh, t == 0 ? h0 : out.select(0, t - 1), w_hh_t);
      run_gates_step(isa, a, t, gh.data_ptr<float>());
    }
  } else {
    const auto packed = pack_forward(w_hh, 3, H, lanes(isa));
    a.wpack = packed.data_ptr<float>();
    run_forward(isa, a);
  }
  return {out, out.select(0, T - 1).clone(), saved};
}

// Returns (dx, dh0, dw_ih, dw_hh, db_ih, db_hh); an input whose gradient is not needed gets an empty tensor.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_backward(
    const at::Tensor& grad_out_, const std::optional<at::Tensor>& grad_h_, const at::Tensor& x_,
    const at::Tensor& h0_, const at::Tensor& w_ih_, const at::Tensor& w_hh_, const at::Tensor& out_,
    const at::Tensor& saved_, const std::optional<at::Tensor>& keep_, bool need_x, bool need_h0, bool need_w,
    int64_t mode) {
  const auto x = x_.contiguous(), h0 = h0_.contiguous(), w_ih = w_ih_.contiguous(), w_hh = w_hh_.contiguous();
  const auto out = out_.contiguous(), saved = saved_.contiguous(), dout = grad_out_.contiguous();
  const std::optional<at::Tensor> keep = keep_.has_value() ? std::optional<at::Tensor>(keep_->contiguous())
                                                           : std::nullopt;
  const std::optional<at::Tensor> dh_last =
      grad_h_.has_value() ? std::optional<at::Tensor>(grad_h_->contiguous()) : std::nullopt;
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = w_hh.size(1);
  TORCH_CHECK(saved.sizes() == at::IntArrayRef({T, B, 4 * H}), "fused GRU backward: forward did not save");
  TORCH_CHECK(dout.sizes() == at::IntArrayRef({T, B, H}), "fused GRU backward: bad grad_out shape");
  auto dgx = pooled_empty({T, B, 3 * H}, x.options());
  auto dgh = pooled_empty({T, B, 3 * H}, x.options());
  auto dh0 = at::empty({B, H}, x.options());
  const Isa isa = pick_isa(x, mode);
  if (isa == Isa::kGeneric) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rlgru_fused_gru_backward", [&] {
      bwd_generic<scalar_t>(T, B, H, h0.data_ptr<scalar_t>(), keep ? keep->data_ptr<scalar_t>() : nullptr,
                            out.data_ptr<scalar_t>(), saved.data_ptr<scalar_t>(), dout.data_ptr<scalar_t>(),
                            dh_last ? dh_last->data_ptr<scalar_t>() : nullptr, w_hh, dgx, dgh, dh0);
    });
  } else {
    const auto packed = pack_backward(w_hh, 3, H, lanes(isa));
    auto dhd = at::empty({B, H}, x.options());
    SeqArgs a{};
    a.T = T;
    a.B = B;
    a.H = H;
    a.h0 = h0.data_ptr<float>();
    a.keep = keep ? keep->data_ptr<float>() : nullptr;
    a.wpack = packed.data_ptr<float>();
    a.out = const_cast<float*>(out.data_ptr<float>());
    a.save = const_cast<float*>(saved.data_ptr<float>());
    a.dout = dout.data_ptr<float>();
    a.dh_last = dh_last ? dh_last->data_ptr<float>() : nullptr;
    a.dgx = dgx.data_ptr<float>();
    a.dgh = dgh.data_ptr<float>();
    a.dhd = dhd.data_ptr<float>();
    a.dh0 = dh0.data_ptr<float>();
    run_backward(isa, a);
  }
  const auto empty = at::empty({0}, x.options());
  at::Tensor dx = empty, dw_ih = empty, dw_hh = empty, db_ih = empty, db_hh = empty;
  const auto dgx2 = dgx.view({T * B, 3 * H}), dgh2 = dgh.view({T * B, 3 * H}), x2 = x.view({T * B, I});
  if (need_x) dx = gemm_nt(dgx2, w_ih.t().contiguous(), std::nullopt).view({T, B, I});
  if (need_w) {
    // dW = dG^T @ input, a reduction over the long time*batch axis. oneDNN wants that axis contiguous in both
    // operands, hence the transposes; h_prev is what each step saw: h0 then the outputs, zeroed at resets.
    if (isa != Isa::kGeneric && onednn_usable(x)) {
      auto hprev_t = pooled_empty({H, T * B}, x.options());
      const float* kp = keep ? keep->data_ptr<float>() : nullptr;
      transpose_into(isa, h0.data_ptr<float>(), B, H, hprev_t.data_ptr<float>(), T * B, kp);
      if (T > 1) {
        transpose_into(isa, out.data_ptr<float>(), (T - 1) * B, H, hprev_t.data_ptr<float>() + B, T * B,
                       kp ? kp + B : nullptr);
      }
      dw_ih = gemm_nt(transposed(isa, dgx2, &db_ih), transposed(isa, x2), std::nullopt);
      dw_hh = gemm_nt(transposed(isa, dgh2, &db_hh), hprev_t, std::nullopt);
    } else {
      auto hprev = at::cat({h0.unsqueeze(0), out.narrow(0, 0, T - 1)}, 0);
      if (keep.has_value()) hprev.mul_(keep->unsqueeze(-1));
      dw_ih = at::mm(dgx2.t(), x2);
      dw_hh = at::mm(dgh2.t(), hprev.view({T * B, H}));
      db_ih = dgx2.sum(0);
      db_hh = dgh2.sum(0);
    }
  }
  return {dx, need_h0 ? dh0 : empty, dw_ih, dw_hh, db_ih, db_hh};
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
}  // namespace rlgru_fused_gru

TORCH_LIBRARY(rlgru_fused_gru, m) {
  m.def(
      "forward(Tensor x, Tensor h0, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, Tensor? keep, bool save, "
      "int mode) -> (Tensor, Tensor, Tensor)",
      &rlgru_fused_gru::gru_forward);
  m.def(
      "backward(Tensor grad_out, Tensor? grad_h, Tensor x, Tensor h0, Tensor w_ih, Tensor w_hh, Tensor out, "
      "Tensor saved, Tensor? keep, bool need_x, bool need_h0, bool need_w, int mode) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)",
      &rlgru_fused_gru::gru_backward);
  m.def("isa() -> str", &rlgru_fused_gru::isa_name);
  m.def("onednn_gemm() -> bool", &rlgru_fused_gru::onednn_gemm);
  m.def("release_cached_memory() -> ()", &rlgru_fused_gru::release_cached_memory);
}

#else  // RLGRU_KERNEL_PASS: the kernel section, compiled once per pass inside its own namespace.

#include "kernel_common.h"  // part 2: lane types (Ops), SIMD transposes, run_steps

// ---------------------------------------------------------------------------------------------------------
// Gate code shared by all paths. Pointers are already offset to (row b, first unit); H strides the gate blocks.

// Forward: ar, az, an are h_prev @ W_hh^T for the r, z, n gates with the *unmasked* h_prev; kp (0 or 1) applies
// the episode-start reset; bhr, bhz, bhn are b_hh's blocks.
template <class O>
RLGRU_INLINE void fwd_gates(typename O::V ar, typename O::V az, typename O::V an, typename O::S kp,
                            const typename O::S* hprev, const typename O::S* gx, typename O::V bhr,
                            typename O::V bhz, typename O::V bhn, typename O::S* out, typename O::S* save,
                            int64_t H, int nv) {
  using V = typename O::V;
  const V k = O::set1(kp);
  const V hp = O::loadn(hprev, nv) * k;
  const V r = O::sigmoid(O::loadn(gx, nv) + ar * k + bhr);
  const V z = O::sigmoid(O::loadn(gx + H, nv) + az * k + bhz);
  const V hn = an * k + bhn;
  const V n = O::tanh(O::loadn(gx + 2 * H, nv) + r * hn);
  O::storen(out, n + z * (hp - n), nv);
  if (save != nullptr) {
    O::storen(save, r, nv);
    O::storen(save + H, z, nv);
    O::storen(save + 2 * H, n, nv);
    O::storen(save + 3 * H, hn, nv);
  }
}

// Backward through one step given dL/dh_t: writes the pre-activation gradients of the input side (dgx) and
// of the recurrent side (dgh, whose n block is scaled by r), and the direct term dh_t * z_t that flows to
// h_{t-1}.
template <class O>
RLGRU_INLINE void bwd_gates(typename O::V dh, typename O::S kp, const typename O::S* hprev,
                            const typename O::S* save, typename O::S* dgx, typename O::S* dgh, typename O::S* dhd,
                            int64_t H, int nv) {
  using V = typename O::V;
  const V one = O::set1(1);
  const V r = O::loadn(save, nv);
  const V z = O::loadn(save + H, nv);
  const V n = O::loadn(save + 2 * H, nv);
  const V hn = O::loadn(save + 3 * H, nv);
  const V hp = O::loadn(hprev, nv) * O::set1(kp);
  const V dhz = dh * z;
  const V dan = (dh - dhz) * (one - n * n);
  const V dar = dan * hn * r * (one - r);
  const V daz = dh * (hp - n) * z * (one - z);
  const V dhn = dan * r;
  O::storen(dgx, dar, nv);
  O::storen(dgx + H, daz, nv);
  O::storen(dgx + 2 * H, dan, nv);
  O::storen(dgh, dar, nv);
  O::storen(dgh + H, daz, nv);
  O::storen(dgh + 2 * H, dhn, nv);
  O::storen(dhd, dhz, nv);
}

#if RLGRU_KERNEL_PASS != 0
// ---------------------------------------------------------------------------------------------------------
// SIMD tiles (float32). A tile is MR batch rows times one or more chunks of W hidden units.

using V = Ops::V;
constexpr int W = Ops::W;
// Register tiles: AVX-512 has 32 vector registers, AVX2 16.
constexpr int kFwdRows = W == 16 ? 8 : 4;    // rows x 3 gates: 24 / 12 accumulators
constexpr int kBwdRows = W == 16 ? 8 : 6;    // times kBwdChunks: 24 / 12 accumulators
constexpr int kBwdChunks = W == 16 ? 3 : 2;

struct FwdStep {
  const float* hprev;  // [B, H], unmasked
  const float* keep;   // [B] or nullptr
  const float* gx;     // [B, 3H]
  const float* bhh;    // [3H]
  const float* wpack;  // [chunks][H][3][W]
  float* out;          // [B, H]
  float* save;         // [B, 4H] or nullptr
  int64_t H;
};

template <int MR>
RLGRU_INLINE void fwd_tile(const FwdStep& s, int64_t b0, int64_t c) {
  const int64_t H = s.H;
  const float* wp = s.wpack + c * H * 3 * W;
  const float* hp = s.hprev + b0 * H;
  V acc_r[MR], acc_z[MR], acc_n[MR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) acc_r[m] = acc_z[m] = acc_n[m] = Ops::set1(0.0f);
  for (int64_t k = 0; k < H; ++k, wp += 3 * W) {
    const V w0 = Ops::load(wp), w1 = Ops::load(wp + W), w2 = Ops::load(wp + 2 * W);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const V a = Ops::set1(hp[m * H + k]);
      acc_r[m] = Ops::fma(a, w0, acc_r[m]);
      acc_z[m] = Ops::fma(a, w1, acc_z[m]);
      acc_n[m] = Ops::fma(a, w2, acc_n[m]);
    }
  }
  const int64_t u0 = c * W;
  const int nv = static_cast<int>(std::min<int64_t>(W, H - u0));
  const V bhr = Ops::loadn(s.bhh + u0, nv), bhz = Ops::loadn(s.bhh + H + u0, nv);
  const V bhn = Ops::loadn(s.bhh + 2 * H + u0, nv);
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    const int64_t b = b0 + m;
    fwd_gates<Ops>(acc_r[m], acc_z[m], acc_n[m], s.keep ? s.keep[b] : 1.0f, s.hprev + b * H + u0,
                   s.gx + b * 3 * H + u0, bhr, bhz, bhn, s.out + b * H + u0,
                   s.save ? s.save + b * 4 * H + u0 : nullptr, H, nv);
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
  // GEMM part, step t: dL/dh_{t-1} (through step t) = keep_t * (dgh_t @ W_hh + dhd)
  const float* dgh_t;   // [B, 3H]
  const float* keep_t;  // [B] or nullptr
  const float* wpack;   // [chunks][3H][W]
  float* dhd;           // [B, H]: dh_t * z_t in, dh_{t-1} * z_{t-1} out
  // gate part, step s = t - 1 (or, without it, dh0)
  const float* dout_s;   // [B, H]
  const float* keep_s;   // [B] or nullptr
  const float* hprev_s;  // [B, H], unmasked
  const float* save_s;   // [B, 4H]
  float* dgx_s;          // [B, 3H]
  float* dgh_s;          // [B, 3H]
  float* dh0;            // [B, H]
  int64_t H;
};

template <int MR, int NC, bool GATES>
RLGRU_INLINE void bwd_tile(const BwdStep& s, int64_t b0, int64_t c0) {
  static_assert(NC >= 1 && NC <= 3, "one to three chunks per tile");
  const int64_t H = s.H, K = 3 * H;
  const float* wp0 = s.wpack + c0 * K * W;
  const float* wp1 = wp0 + K * W;
  const float* wp2 = wp1 + K * W;
  const float* a = s.dgh_t + b0 * K;
  // One accumulator array per chunk, indexed by constants only: GCC keeps these in registers (a 2-D array
  // indexed by the chunk loop got spilled).
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
      float* dhd = s.dhd + b * H + u0;
      const V acc = j == 0 ? acc0[m] : (j == 1 ? acc1[m] : acc2[m]);
      const V dh_prev = (acc + Ops::loadn(dhd, nv)) * Ops::set1(s.keep_t ? s.keep_t[b] : 1.0f);
      if constexpr (GATES) {
        const V dh = dh_prev + Ops::loadn(s.dout_s + b * H + u0, nv);
        bwd_gates<Ops>(dh, s.keep_s ? s.keep_s[b] : 1.0f, s.hprev_s + b * H + u0, s.save_s + b * 4 * H + u0,
                       s.dgx_s + b * 3 * H + u0, s.dgh_s + b * 3 * H + u0, dhd, H, nv);
      } else {
        Ops::storen(s.dh0 + b * H + u0, dh_prev, nv);
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
                    a.keep ? a.keep + t * B : nullptr,
                    a.gx + t * B * 3 * H,
                    a.bhh,
                    a.wpack,
                    a.out + t * B * H,
                    a.save ? a.save + t * B * 4 * H : nullptr,
                    H};
    fwd_step(s, B, c, c + 1);
  });
}

// Gates of step t from gh = h_prev @ W_hh^T [B, 3H] computed elsewhere (small problems, where packing W_hh
// would cost more than the GEMM).
void fwd_gates_step(const SeqArgs& a, int64_t t, const float* gh) {
  const int64_t H = a.H, B = a.B;
  const float* hprev = t == 0 ? a.h0 : a.out + (t - 1) * B * H;
  for (int64_t u0 = 0; u0 < H; u0 += W) {
    const int nv = static_cast<int>(std::min<int64_t>(W, H - u0));
    const V bhr = Ops::loadn(a.bhh + u0, nv), bhz = Ops::loadn(a.bhh + H + u0, nv);
    const V bhn = Ops::loadn(a.bhh + 2 * H + u0, nv);
    for (int64_t b = 0; b < B; ++b) {
      const float* g = gh + b * 3 * H + u0;
      const int64_t row = t * B + b;
      fwd_gates<Ops>(Ops::loadn(g, nv), Ops::loadn(g + H, nv), Ops::loadn(g + 2 * H, nv),
                     a.keep ? a.keep[row] : 1.0f, hprev + b * H + u0, a.gx + row * 3 * H + u0, bhr, bhz, bhn,
                     a.out + row * H + u0, a.save ? a.save + row * 4 * H + u0 : nullptr, H, nv);
    }
  }
}

// Step i = 0 is a plain gate pass for t = T-1 (its dL/dh comes from the outputs alone); step i = 1..T runs the
// GEMM of t = T-i, whose epilogue does the gate pass of t-1 (or writes dh0 for t = 0). Groups are kBwdChunks
// chunks of W hidden units.
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
    s.dhd = a.dhd;
    s.dh0 = a.dh0;
    if (t >= 1) {
      const int64_t u = t - 1;
      s.dout_s = a.dout + u * B * H;
      s.keep_s = a.keep ? a.keep + u * B : nullptr;
      s.hprev_s = u == 0 ? a.h0 : a.out + (u - 1) * B * H;
      s.save_s = a.save + u * B * 4 * H;
      s.dgx_s = a.dgx + u * B * 3 * H;
      s.dgh_s = a.dgh + u * B * 3 * H;
    }
    if (i == 0) {
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t u0 = c0 * W; u0 < std::min(H, c1 * W); u0 += W) {
          const int nv = static_cast<int>(std::min<int64_t>(W, H - u0));
          V dh = Ops::loadn(s.dout_s + b * H + u0, nv);
          if (a.dh_last != nullptr) dh = dh + Ops::loadn(a.dh_last + b * H + u0, nv);
          bwd_gates<Ops>(dh, s.keep_s ? s.keep_s[b] : 1.0f, s.hprev_s + b * H + u0, s.save_s + b * 4 * H + u0,
                         s.dgx_s + b * 3 * H + u0, s.dgh_s + b * 3 * H + u0, s.dhd + b * H + u0, H, nv);
        }
      }
      return;
    }
    s.dgh_t = a.dgh + t * B * 3 * H;
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
