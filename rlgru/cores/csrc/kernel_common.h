// Infrastructure shared by rlgru's fused recurrent kernels (fused_gru.cpp, fused_lstm.cpp).
//
// Each kernel source includes this header three times, the way it includes itself once per ISA:
//  1. at global scope, before anything else: system and ATen headers, the RLGRU_X86_SIMD / RLGRU_INLINE macros;
//  2. inside each kernel pass (RLGRU_KERNEL_PASS defined, inside that pass's namespace, under its
//     `#pragma GCC target`): the lane types `Ops` (scalar for pass 0, AVX2 or AVX-512 vectors otherwise) with
//     their exp / sigmoid / tanh, and for the SIMD passes the SIMD transposer and the step loop `run_steps`;
//  3. inside the kernel's own namespace after its passes, with RLGRU_COMMON_HOST defined: the host helpers
//     (ISA detection, the buffer pool, weight packing, big GEMMs via oneDNN, transposes).
// Everything lands in the including file's anonymous namespace, so each extension gets its own copy (and its
// own buffer pool) with internal linkage: two extensions loaded in one process cannot clash.

#if !defined(RLGRU_KERNEL_PASS) && !defined(RLGRU_COMMON_HOST)
// ---- part 1: headers and macros ----------------------------------------------------------------------------
#ifndef RLGRU_KERNEL_COMMON_PRELUDE
#define RLGRU_KERNEL_COMMON_PRELUDE

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
#endif  // RLGRU_KERNEL_COMMON_PRELUDE

#elif defined(RLGRU_KERNEL_PASS)
// ---- part 2: lane types and SIMD helpers, once per kernel pass ----------------------------------------

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

#if RLGRU_KERNEL_PASS != 0

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

#endif  // RLGRU_KERNEL_PASS != 0

#else  // RLGRU_COMMON_HOST
// ---- part 3: host helpers, after the kernel passes --------------------------------------------------

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

// W_hh is [G * H, H] for G gate blocks of H units (G = 3 for a GRU, 4 for an LSTM).
// h @ W_hh^T tiles read, per chunk of W hidden units and per k, the G gate weights of those units side by side.
at::Tensor pack_forward(const at::Tensor& w_hh, int64_t G, int64_t H, int W) {
  const int64_t nchunks = (H + W - 1) / W;
  const int64_t pad = nchunks * W;
  auto gates = w_hh.view({G, H, H});  // [gate, unit, k]
  if (pad != H) gates = at::constant_pad_nd(gates, {0, 0, 0, pad - H});
  auto packed = pooled_empty({nchunks, H, G, W}, w_hh.options());
  packed.copy_(gates.view({G, nchunks, W, H}).permute({1, 3, 0, 2}));
  return packed;
}

// dG @ W_hh tiles read, per chunk of W output units and per k in 0..G*H, W consecutive weights.
at::Tensor pack_backward(const at::Tensor& w_hh, int64_t G, int64_t H, int W) {
  const int64_t nchunks = (H + W - 1) / W;
  const int64_t pad = nchunks * W;
  auto padded = pad == H ? w_hh : at::constant_pad_nd(w_hh, {0, pad - H});  // [G*H, pad]
  auto packed = pooled_empty({nchunks, G * H, W}, w_hh.options());
  packed.copy_(padded.view({G * H, nchunks, W}).permute({1, 0, 2}));
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
  TORCH_CHECK(false, "rlgru kernels: no SIMD transpose for this CPU");
}

// a^T, and a's column sums into `colsum` when given.
at::Tensor transposed(Isa isa, const at::Tensor& a, at::Tensor* colsum = nullptr) {
  auto out = pooled_empty({a.size(1), a.size(0)}, a.options());
  if (colsum != nullptr) *colsum = at::empty({a.size(1)}, a.options());
  transpose_into(isa, a.data_ptr<float>(), a.size(0), a.size(1), out.data_ptr<float>(), a.size(0), nullptr,
                 colsum != nullptr ? colsum->data_ptr<float>() : nullptr);
  return out;
}

#endif  // parts
