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

#ifndef RLGRU_KERNEL_PASS

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

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

enum class Isa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

// ---------------------------------------------------------------------------------------------------------
// Buffer pool. A training step allocates ~10 buffers of T*B*H-ish floats per layer; PyTorch's CPU allocator
// hands them straight back to the OS (glibc trims the heap), so every step pays first-touch page faults again,
// which on VMs cost as much as the GEMMs. Blocks are reused by exact byte size (minibatch shapes repeat), the
// cache is bounded, and release_cached_memory() empties it.
class BufferPool {
 public:
  static BufferPool& instance() {
    static BufferPool* pool = new BufferPool();  // never destroyed: tensors may outlive static destructors
    return *pool;
  }

  at::Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) * options.dtype().itemsize();
    if (bytes < kMinBytes || bytes > kMaxCachedBytes) return at::empty(sizes, options);
    void* data = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        data = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
      }
    }
    if (data == nullptr) data = c10::alloc_cpu(bytes);
    return at::from_blob(data, sizes, [this, bytes](void* p) { release(p, bytes); }, options);
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& entry : free_)
      for (void* p : entry.second) c10::free_cpu(p);
    free_.clear();
    cached_ = 0;
  }

 private:
  static constexpr size_t kMinBytes = size_t{64} << 10;
  static constexpr size_t kMaxCachedBytes = size_t{256} << 20;

  void release(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= kMaxCachedBytes) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    c10::free_cpu(p);
  }

  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  return BufferPool::instance().empty(sizes, options);
}

#if RLGRU_X86_SIMD
Isa detect_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
  return Isa::kGeneric;
}
#else
Isa detect_isa() { return Isa::kGeneric; }
#endif

Isa best_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

int lanes(Isa isa) { return isa == Isa::kAvx512 ? 16 : 8; }

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

// h @ W_hh^T tiles read, per chunk of W hidden units and per k, the r, z, n weights of those units side by side.
at::Tensor pack_forward(const at::Tensor& w_hh, int64_t H, int W) {
  const int64_t nchunks = (H + W - 1) / W;
  const int64_t pad = nchunks * W;
  auto gates = w_hh.view({3, H, H});  // [gate, unit, k]
  if (pad != H) gates = at::constant_pad_nd(gates, {0, 0, 0, pad - H});
  auto packed = pooled_empty({nchunks, H, 3, W}, w_hh.options());
  packed.copy_(gates.view({3, nchunks, W, H}).permute({1, 3, 0, 2}));
  return packed;
}

// dGh @ W_hh tiles read, per chunk of W output units and per k in 0..3H, W consecutive weights.
at::Tensor pack_backward(const at::Tensor& w_hh, int64_t H, int W) {
  const int64_t nchunks = (H + W - 1) / W;
  const int64_t pad = nchunks * W;
  auto padded = pad == H ? w_hh : at::constant_pad_nd(w_hh, {0, pad - H});  // [3H, pad]
  auto packed = pooled_empty({nchunks, 3 * H, W}, w_hh.options());
  packed.copy_(padded.view({3 * H, nchunks, W}).permute({1, 0, 2}));
  return packed;
}

// ---------------------------------------------------------------------------------------------------------
// Big GEMMs. PyTorch's own fp32 CPU matmul may go to a BLAS that does not use the CPU's widest vectors (MKL on
// AMD runs its AVX2 code), while oneDNN, which nn.LSTM uses, does; oneDNN's inner product is reachable as the
// operator mkldnn::_linear_pointwise. Used for float32 when present and enabled, otherwise at::addmm.

c10::IValue call_boxed(const c10::OperatorHandle& op, const at::Tensor& a, const at::Tensor& b,
                       const std::optional<at::Tensor>& bias) {
  torch::jit::Stack stack;
  stack.emplace_back(a);
  stack.emplace_back(b);
  stack.emplace_back(bias.has_value() ? c10::IValue(*bias) : c10::IValue());
  stack.emplace_back(std::string("none"));
  stack.emplace_back(c10::List<std::optional<at::Scalar>>());
  stack.emplace_back(std::string(""));
  op.callBoxed(&stack);
  return stack[0];
}

// The operator is internal to PyTorch (Inductor uses it), so it is looked up by name, called boxed (immune to
// C++ signature drift) and checked once against at::addmm; any surprise means at::mm from then on.
const c10::OperatorHandle* onednn_linear_op() {
  static const c10::OperatorHandle* op = []() -> const c10::OperatorHandle* {
    if (!at::hasMKLDNN()) return nullptr;
    auto handle = c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""});
    if (!handle.has_value()) return nullptr;
    try {
      const auto opts = at::TensorOptions().dtype(at::kFloat);
      const auto a = at::arange(70 * 33, opts).remainder(7).sub(3).mul(0.25).view({70, 33});
      const auto b = at::arange(40 * 33, opts).remainder(5).sub(2).mul(0.5).view({40, 33});
      const auto bias = at::arange(40, opts).mul(0.1);
      const auto got = call_boxed(*handle, a, b, bias).toTensor();
      if (!at::allclose(got, at::addmm(bias, a, b.t()), 1e-5, 1e-5)) return nullptr;
    } catch (const std::exception&) {
      return nullptr;
    }
    return new c10::OperatorHandle(*handle);
  }();
  return op;
}

std::atomic<bool> g_onednn_failed{false};

// a [M, K] @ b[N, K]^T (+ bias), a and b contiguous.
at::Tensor gemm_nt(const at::Tensor& a, const at::Tensor& b, const std::optional<at::Tensor>& bias) {
  const auto* op = onednn_linear_op();
  const bool big = a.size(0) * a.size(1) * b.size(0) >= (int64_t{1} << 20);
  if (op != nullptr && !g_onednn_failed && big && a.scalar_type() == at::kFloat &&
      at::globalContext().userEnabledMkldnn()) {
    try {
      return call_boxed(*op, a, b, bias).toTensor();
    } catch (const std::exception&) {
      g_onednn_failed = true;
    }
  }
  if (bias.has_value()) return at::addmm(*bias, a, b.t());
  return at::mm(a, b.t());
}

bool onednn_usable(const at::Tensor& like) {
  return onednn_linear_op() != nullptr && !g_onednn_failed && like.scalar_type() == at::kFloat &&
         at::globalContext().userEnabledMkldnn();
}

// [R, C] -> [C, R] for float32 with the SIMD transposer (ATen's strided copy is several times slower), rows
// optionally scaled. `dst` may be a column range of a wider matrix (leading dimension ldd).
void transpose_into(Isa isa, const float* src, int64_t R, int64_t C, float* dst, int64_t ldd, const float* scale,
                    float* colsum = nullptr) {
#if RLGRU_X86_SIMD
  if (isa == Isa::kAvx512) return avx512::transpose(src, R, C, dst, ldd, scale, colsum);
  if (isa == Isa::kAvx2) return avx2::transpose(src, R, C, dst, ldd, scale, colsum);
#endif
  TORCH_CHECK(false, "fused GRU: no SIMD transpose for this CPU");
}

// a^T, and a's column sums into `colsum` when given.
at::Tensor transposed(Isa isa, const at::Tensor& a, at::Tensor* colsum = nullptr) {
  auto out = pooled_empty({a.size(1), a.size(0)}, a.options());
  if (colsum != nullptr) *colsum = at::empty({a.size(1)}, a.options());
  transpose_into(isa, a.data_ptr<float>(), a.size(0), a.size(1), out.data_ptr<float>(), a.size(0), nullptr,
                 colsum != nullptr ? colsum->data_ptr<float>() : nullptr);
  return out;
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
    const auto packed = pack_forward(w_hh, H, lanes(isa));
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
    const auto packed = pack_backward(w_hh, H, lanes(isa));
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

// ---------------------------------------------------------------------------------------------------------
// Lane types. `Ops` bundles a lane type V (a scalar, or a vector of W floats) with the operations the gate
// code needs, so the same gate code serves the vector kernels and the generic scalar path.

#if RLGRU_KERNEL_PASS == 0

template <typename T>
struct Ops {
  using S = T;
  using V = T;
  static constexpr int W = 1;
  static RLGRU_INLINE V loadn(const S* p, int) { return *p; }
  static RLGRU_INLINE void storen(S* p, V v, int) { *p = v; }
  static RLGRU_INLINE V set1(S s) { return s; }
  static RLGRU_INLINE V sigmoid(V x) { return S(1) / (S(1) + std::exp(-x)); }
  static RLGRU_INLINE V tanh(V x) { return std::tanh(x); }
};

#else

#if RLGRU_KERNEL_PASS == 3
struct Isa {
  using V = __m512;
  using VI = __m512i;
  static constexpr int W = 16;
  static constexpr int kFwdRows = 8;    // 24 accumulators of 32 registers
  static constexpr int kBwdRows = 8;    // times kBwdChunks: 24 accumulators
  static constexpr int kBwdChunks = 3;
  static RLGRU_INLINE V load(const float* p) { return _mm512_loadu_ps(p); }
  static RLGRU_INLINE void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static RLGRU_INLINE V loadn(const float* p, int n) {
    return n == W ? load(p) : _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
  }
  static RLGRU_INLINE void storen(float* p, V v, int n) {
    if (n == W) {
      store(p, v);
    } else {
      _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
    }
  }
  static RLGRU_INLINE V set1(float s) { return _mm512_set1_ps(s); }
  static RLGRU_INLINE V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static RLGRU_INLINE V min(V a, V b) { return _mm512_min_ps(a, b); }
  static RLGRU_INLINE V max(V a, V b) { return _mm512_max_ps(a, b); }
  static RLGRU_INLINE V select_lt(V a, V b, V if_lt, V otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), otherwise, if_lt);
  }
  static RLGRU_INLINE VI bits(V v) { return _mm512_castps_si512(v); }
  static RLGRU_INLINE V from_bits(VI v) { return _mm512_castsi512_ps(v); }
  static RLGRU_INLINE VI sub_i32(VI a, VI b) { return _mm512_sub_epi32(a, b); }
  static RLGRU_INLINE VI add_i32(VI a, VI b) { return _mm512_add_epi32(a, b); }
  static RLGRU_INLINE VI set1_i32(int v) { return _mm512_set1_epi32(v); }
  static RLGRU_INLINE VI shl23(VI a) { return _mm512_slli_epi32(a, 23); }
};
#else
struct Isa {
  using V = __m256;
  using VI = __m256i;
  static constexpr int W = 8;
  static constexpr int kFwdRows = 4;    // 12 accumulators of 16 registers
  static constexpr int kBwdRows = 6;    // times kBwdChunks: 12 accumulators
  static constexpr int kBwdChunks = 2;
  static RLGRU_INLINE V load(const float* p) { return _mm256_loadu_ps(p); }
  static RLGRU_INLINE void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static RLGRU_INLINE V loadn(const float* p, int n) {
    if (n == W) return load(p);
    float buf[W] = {};
    std::memcpy(buf, p, sizeof(float) * n);
    return load(buf);
  }
  static RLGRU_INLINE void storen(float* p, V v, int n) {
    if (n == W) {
      store(p, v);
    } else {
      float buf[W];
      store(buf, v);
      std::memcpy(p, buf, sizeof(float) * n);
    }
  }
  static RLGRU_INLINE V set1(float s) { return _mm256_set1_ps(s); }
  static RLGRU_INLINE V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static RLGRU_INLINE V min(V a, V b) { return _mm256_min_ps(a, b); }
  static RLGRU_INLINE V max(V a, V b) { return _mm256_max_ps(a, b); }
  static RLGRU_INLINE V select_lt(V a, V b, V if_lt, V otherwise) {
    return _mm256_blendv_ps(otherwise, if_lt, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
  }
  static RLGRU_INLINE VI bits(V v) { return _mm256_castps_si256(v); }
  static RLGRU_INLINE V from_bits(VI v) { return _mm256_castsi256_ps(v); }
  static RLGRU_INLINE VI sub_i32(VI a, VI b) { return _mm256_sub_epi32(a, b); }
  static RLGRU_INLINE VI add_i32(VI a, VI b) { return _mm256_add_epi32(a, b); }
  static RLGRU_INLINE VI set1_i32(int v) { return _mm256_set1_epi32(v); }
  static RLGRU_INLINE VI shl23(VI a) { return _mm256_slli_epi32(a, 23); }
};
#endif

struct Ops : Isa {
  using S = float;
  // exp(x) to about 2 ulp: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-7 Taylor polynomial, 2^n from the
  // exponent bits; n is rounded with the 1.5 * 2^23 trick, so no float/int conversion is needed.
  static RLGRU_INLINE V exp(V x) {
    x = min(set1(88.3f), max(set1(-87.3f), x));  // operand order keeps NaN (max/min return the 2nd on NaN)
    const V magic = set1(12582912.0f);
    const V t = fma(x, set1(1.44269504088896341f), magic);
    const V n = t - magic;
    const VI ni = sub_i32(bits(t), bits(magic));
    V r = fma(n, set1(-0.693359375f), x);
    r = fma(n, set1(2.12194440e-4f), r);
    V p = set1(1.0f / 5040.0f);
    p = fma(p, r, set1(1.0f / 720.0f));
    p = fma(p, r, set1(1.0f / 120.0f));
    p = fma(p, r, set1(1.0f / 24.0f));
    p = fma(p, r, set1(1.0f / 6.0f));
    p = fma(p, r, set1(0.5f));
    p = fma(p, r, set1(1.0f));
    p = fma(p, r, set1(1.0f));
    return p * from_bits(shl23(add_i32(ni, set1_i32(127))));
  }
  static RLGRU_INLINE V sigmoid(V x) { return set1(1.0f) / (set1(1.0f) + exp(-x)); }
  // 1 - 2 / (e^{2x} + 1) loses relative accuracy near 0, where the odd Taylor series takes over.
  static RLGRU_INLINE V tanh(V x) {
    const V big = set1(1.0f) - set1(2.0f) / (exp(x + x) + set1(1.0f));
    const V x2 = x * x;
    const V small = fma(x * x2, fma(x2, fma(x2, set1(-17.0f / 315.0f), set1(2.0f / 15.0f)), set1(-1.0f / 3.0f)), x);
    return select_lt(x2, set1(0.0025f), small, big);
  }
};

#endif  // RLGRU_KERNEL_PASS == 0

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
  constexpr int MR = Ops::kFwdRows;
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
  constexpr int MR = Ops::kBwdRows;
  int64_t b0 = 0;
  for (; b0 + MR <= B; b0 += MR) bwd_tile<MR, NC, GATES>(s, b0, c0);
  for (; b0 + 4 <= B; b0 += 4) bwd_tile<4, NC, GATES>(s, b0, c0);
  for (; b0 + 2 <= B; b0 += 2) bwd_tile<2, NC, GATES>(s, b0, c0);
  for (; b0 < B; ++b0) bwd_tile<1, NC, GATES>(s, b0, c0);
}

template <bool GATES>
void bwd_step(const BwdStep& s, int64_t B, int64_t c_begin, int64_t c_end) {
  constexpr int NC = Ops::kBwdChunks;
  int64_t c = c_begin;
  for (; c + NC <= c_end; c += NC) bwd_rows<NC, GATES>(s, B, c);
  if (c_end - c == 2) bwd_rows<2, GATES>(s, B, c);
  if (c_end - c == 1) bwd_rows<1, GATES>(s, B, c);
}

// Runs f(step, group) for every step in order and every group of a step; a step's groups are independent but
// need the previous step complete. This is where intra-op threads could share a step's groups; the recurrence
// is deliberately serial: the per-step work at RL sizes (tens of microseconds) does not repay a fork/join per
// step, and a single parallel region with per-step spin-waits, tried too, stalls badly whenever the machine is
// oversubscribed (another process on a core). The big GEMMs around the loop do use the intra-op threads.
template <class F>
void run_steps(int64_t nsteps, int64_t ngroups, const F& f) {
  for (int64_t i = 0; i < nsteps; ++i)
    for (int64_t g = 0; g < ngroups; ++g) f(i, g);
}

// 8x8 block transpose in AVX registers (both SIMD passes have AVX), rows optionally scaled; returns the sum of
// the 8 source rows (the bias gradient comes along for free when the source is dG).
RLGRU_INLINE __m256 transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd, const float* scale) {
  __m256 r[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm256_loadu_ps(src + i * lds);
    if (scale != nullptr) r[i] = _mm256_mul_ps(r[i], _mm256_set1_ps(scale[i]));
  }
  const __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r[0], r[1]), _mm256_add_ps(r[2], r[3])),
                                   _mm256_add_ps(_mm256_add_ps(r[4], r[5]), _mm256_add_ps(r[6], r[7])));
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(dst + 0 * ldd, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + 1 * ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
  return sum;
}

// dst[c * ldd + r] = src[r * C + c] * scale[r], and colsum[c] = sum_r src[r * C + c] when colsum is given.
// Eight destination rows at a time, each written front to back: square tiles would put dozens of destination
// rows a power-of-two stride apart in one L1 set.
void transpose(const float* src, int64_t R, int64_t C, float* dst, int64_t ldd, const float* scale,
               float* colsum) {
  auto one = [&](int64_t r, int64_t c) {
    const float v = src[r * C + c] * (scale ? scale[r] : 1.0f);
    dst[c * ldd + r] = v;
    return v;
  };
  auto blocks = [&](int64_t b_begin, int64_t b_end) {  // blocks of 8 source columns
    for (int64_t c0 = b_begin * 8; c0 < b_end * 8; c0 += 8) {
      __m256 sum = _mm256_setzero_ps();
      int64_t r = 0;
      for (; r + 8 <= R; r += 8) {
        sum = _mm256_add_ps(sum, transpose8x8(src + r * C + c0, C, dst + c0 * ldd + r, ldd, scale ? scale + r : nullptr));
      }
      alignas(32) float tail[8];
      _mm256_store_ps(tail, sum);
      for (; r < R; ++r)
        for (int64_t c = c0; c < c0 + 8; ++c) tail[c - c0] += one(r, c);
      if (colsum != nullptr) std::memcpy(colsum + c0, tail, sizeof(tail));
    }
  };
  const int64_t nblocks = C / 8;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, 8 * R));
  if (nblocks >= 2 * grain && at::get_num_threads() > 1 && !at::in_parallel_region()) {
    at::parallel_for(0, nblocks, grain, blocks);
  } else {
    blocks(0, nblocks);
  }
  for (int64_t c = nblocks * 8; c < C; ++c) {
    float sum = 0.0f;
    for (int64_t r = 0; r < R; ++r) sum += one(r, c);
    if (colsum != nullptr) colsum[c] = sum;
  }
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
  const int64_t ngroups = (nchunks + Ops::kBwdChunks - 1) / Ops::kBwdChunks;
  run_steps(T + 1, ngroups, [&](int64_t i, int64_t g) {
    const int64_t t = T - i;  // the GEMM's step; gates run for t - 1
    const int64_t c0 = g * Ops::kBwdChunks, c1 = std::min(nchunks, c0 + Ops::kBwdChunks);
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
