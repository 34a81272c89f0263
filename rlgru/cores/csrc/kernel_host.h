// The host side of a fused cell kernel: ISA detection, the buffer pool, weight packing, big GEMMs via oneDNN,
// transposes, and the operators (forward, backward, info) built from the cell's per-ISA `Cell`. Included by
// kernel_cell.h after the passes; register_ops() defines the operators in the cell's torch.ops namespace.

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

// Rollout steps (a few rows, one step) call the forward with the same W_hh dozens of times between two updates.
// Packing it costs more than the step, so the last few packings are kept with a copy of the weights they came
// from and reused when the weights are bit-for-bit the same (a compare is a fraction of a packing; no version
// counters, which `.data` writes bypass). Thread-safe: the actor's and critic's cores may step concurrently.
class PackCache {
 public:
  static PackCache& instance() {
    static PackCache* cache = new PackCache();  // never destroyed, like the buffer pool
    return *cache;
  }

  at::Tensor forward_packed(const at::Tensor& w_hh, int64_t G, int64_t H, int W) {
    const size_t bytes = static_cast<size_t>(w_hh.numel()) * sizeof(float);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& e : entries_) {
        if (e.W == W && e.weights.sizes() == w_hh.sizes() &&
            std::memcmp(e.weights.data_ptr<float>(), w_hh.data_ptr<float>(), bytes) == 0) {
          e.last_use = ++clock_;
          return e.packed;
        }
      }
    }
    Entry fresh{w_hh.clone(), pack_forward(w_hh, G, H, W).clone(), W, 0};
    std::lock_guard<std::mutex> lock(mutex_);
    fresh.last_use = ++clock_;
    if (entries_.size() < kEntries) {
      entries_.push_back(fresh);
    } else {
      *std::min_element(entries_.begin(), entries_.end(),
                        [](const Entry& a, const Entry& b) { return a.last_use < b.last_use; }) = fresh;
    }
    return fresh.packed;
  }

 private:
  struct Entry {
    at::Tensor weights, packed;
    int W;
    uint64_t last_use;
  };
  static constexpr size_t kEntries = 8;  // actor and critic cores, a few layers each
  std::mutex mutex_;
  std::vector<Entry> entries_;
  uint64_t clock_ = 0;
};

// x [R, I] @ w [N, I]^T + bias for inputs too narrow for a BLAS call to pay (CartPole-like observations: a GEMM with
// K = 2 runs at a tiny fraction of BLAS's speed) or problems too small for one (a rollout step). Rows are written
// one at a time from w^T, so the inner loop runs over N contiguous outputs and vectorises; the output comes from
// the buffer pool.
at::Tensor small_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  const int64_t R = x.size(0), I = x.size(1), N = w.size(0);
  auto out = pooled_empty({R, N}, x.options());
  const auto wt = w.t().contiguous();  // [I, N]
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rlgru_small_linear", [&] {
    const scalar_t *xp = x.data_ptr<scalar_t>(), *wp = wt.data_ptr<scalar_t>(), *bp = bias.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r) {
      scalar_t* __restrict__ row = op + r * N;
      for (int64_t n = 0; n < N; ++n) row[n] = bp[n];
      for (int64_t i = 0; i < I; ++i) {
        const scalar_t xi = xp[r * I + i];
        const scalar_t* __restrict__ wi = wp + i * N;
        for (int64_t n = 0; n < N; ++n) row[n] += xi * wi[n];
      }
    }
  });
  return out;
}

// The input projection goes through small_linear below this many multiply-adds, or with at most this many inputs.
constexpr int64_t kSmallLinearMacs = int64_t{1} << 15;
constexpr int64_t kNarrowInputs = 16;

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
  auto out = pooled_empty({a.size(0), b.size(0)}, a.options());  // (fresh pages each call cost as much as the GEMM)
  if (bias.has_value()) return at::addmm_out(out, *bias, a, b.t());
  return at::mm_out(out, a, b.t());
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

// ---------------------------------------------------------------------------------------------------------
// The operators, from the cell's constants:
//   kName      how errors name the kernel ("fused GRU")
//   kGates     gate blocks of W_ih / W_hh (G)
//   kStates    state tensors per layer, h first (GRU: h; LSTM: h and c)
//   kSaved     floats per unit forward saves for backward
//   kSplitBias whether b_hh stays out of the input projection; then the input and recurrent pre-activations get
//              separate gradients and each bias its own, otherwise both share dG and one bias gradient
// Their arguments hold up to two states: h and an optional second one (an LSTM's c); where a cell has no second
// state, its slots stay empty (None in Python). Fixed arguments rather than lists keep a rollout step's call cheap.

using Traits = scalar::Cell<scalar::Ops<float>>;  // the constants are the same in every pass
using States = std::array<at::Tensor, kMaxStates>;
constexpr int G = Traits::kGates;
static_assert(Traits::kStates >= 1 && Traits::kStates <= kMaxStates, "one or two state tensors");

// Calls f with the per-ISA cell of `isa`; f reaches that pass's drivers by argument-dependent lookup.
template <class F>
void with_simd_cell(Isa isa, const F& f) {
#if RLGRU_X86_SIMD
  if (isa == Isa::kAvx512) return f(avx512::Cell<avx512::Ops>());
  if (isa == Isa::kAvx2) return f(avx2::Cell<avx2::Ops>());
#endif
  TORCH_CHECK(false, Traits::kName, ": no SIMD kernel for this CPU");
}

template <typename T>
using GenericCell = scalar::Cell<scalar::Ops<T>>;

// The cell's states, contiguous: h and, for a two-state cell, the second one (which it must get).
States states_of(const at::Tensor& h, const std::optional<at::Tensor>& second, const char* what) {
  TORCH_CHECK(second.has_value() == (Traits::kStates > 1), Traits::kName, ": ", what, " takes ", Traits::kStates,
              " state tensor(s)");
  return {h.contiguous(), second.has_value() ? second->contiguous() : at::Tensor()};
}

void check_inputs(const at::Tensor& x, const States& state, const at::Tensor& w_ih, const at::Tensor& w_hh,
                  const at::Tensor& b_ih, const at::Tensor& b_hh, const std::optional<at::Tensor>& keep) {
  const char* name = Traits::kName;
  TORCH_CHECK(x.device().is_cpu(), name, ": CPU tensors only");
  TORCH_CHECK(x.dim() == 3 && x.size(0) >= 1, name, ": x must be [T>=1, B, I], got ", x.sizes());
  const int64_t B = x.size(1), I = x.size(2), H = w_hh.size(1);
  for (int i = 0; i < Traits::kStates; ++i) {
    TORCH_CHECK(state[i].sizes() == at::IntArrayRef({B, H}), name, ": states must be [B, H], got ", state[i].sizes());
    TORCH_CHECK(state[i].scalar_type() == x.scalar_type(), name, ": all tensors must share x's dtype");
  }
  TORCH_CHECK(w_ih.sizes() == at::IntArrayRef({G * H, I}), name, ": weight_ih must be [", G, "H, I]");
  TORCH_CHECK(w_hh.sizes() == at::IntArrayRef({G * H, H}), name, ": weight_hh must be [", G, "H, H]");
  TORCH_CHECK(b_ih.sizes() == at::IntArrayRef({G * H}) && b_hh.sizes() == at::IntArrayRef({G * H}), name,
              ": biases must be [", G, "H]");
  for (const auto* t : {&w_ih, &w_hh, &b_ih, &b_hh}) {
    TORCH_CHECK(t->scalar_type() == x.scalar_type(), name, ": all tensors must share x's dtype");
  }
  if (keep.has_value()) {
    TORCH_CHECK(keep->sizes() == at::IntArrayRef({x.size(0), B}) && keep->scalar_type() == x.scalar_type(), name,
                ": keep must be [T, B] with x's dtype");
  }
}

// Below this many time*batch rows the forward kernel reuses cached packings of W_hh (PackCache).
constexpr int64_t kMinPackedRows = 64;

// mode 0: the widest SIMD this CPU has; 1: the generic code; 2: AVX2 even on an AVX-512 CPU (for tests).
Isa pick_isa(const at::Tensor& x, int64_t mode) {
  TORCH_CHECK(mode >= 0 && mode <= 2, Traits::kName, ": mode must be 0, 1 or 2");
  if (mode == 1 || x.scalar_type() != at::kFloat) return Isa::kGeneric;
  if (mode == 2) {
    TORCH_CHECK(best_isa() != Isa::kGeneric, Traits::kName, ": this CPU has no AVX2 kernel");
    return Isa::kAvx2;
  }
  return best_isa();
}

std::optional<at::Tensor> contiguous_opt(const std::optional<at::Tensor>& t) {
  return t.has_value() ? std::optional<at::Tensor>(t->contiguous()) : std::nullopt;
}

template <typename S>
S* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<S>() : nullptr;
}

// The pointers both directions use: sizes, resets, initial states and every step's states.
template <typename S>
Seq<S> sequence(const at::Tensor& x, int64_t H, const std::optional<at::Tensor>& keep, const States& init,
                const States& seqs) {
  Seq<S> a{};
  a.T = x.size(0);
  a.B = x.size(1);
  a.H = H;
  a.keep = keep.has_value() ? keep->data_ptr<S>() : nullptr;
  for (int i = 0; i < Traits::kStates; ++i) {
    a.init[i] = init[i].data_ptr<S>();
    a.seq[i] = seqs[i].data_ptr<S>();
  }
  return a;
}

// h_prev @ W_hh^T by a BLAS call per step, then the cell's gates: the generic path, and small problems (rollout
// steps), where that beats packing W_hh for the register-tiled kernel.
template <class C, typename S>
void forward_per_step(C cell, const Seq<S>& a, const at::Tensor& h0, const at::Tensor& out, const at::Tensor& w_hh) {
  auto gh = at::empty({a.B, G * a.H}, out.options());
  const auto w_hh_t = w_hh.t();
  for (int64_t t = 0; t < a.T; ++t) {
    at::mm_out(gh, t == 0 ? h0 : out.select(0, t - 1), w_hh_t);
    gates_step(cell, a, t, gh.template data_ptr<S>());
  }
}

// The generic path's backward: dG_t @ W_hh by at::mm per step between the cell's gate passes.
template <class C, typename S>
void backward_per_step(C cell, const Seq<S>& a, const at::Tensor& dgh, const at::Tensor& w_hh) {
  auto prod = at::empty({a.B, a.H}, w_hh.options());
  bwd_last(cell, a, 0, a.H);
  for (int64_t t = a.T - 1; t >= 0; --t) {
    at::mm_out(prod, dgh.select(0, t), w_hh);
    bwd_from_product(cell, a, t, prod.template data_ptr<S>());
  }
}

// Returns (out [T,B,H], h_last [B,H], the second state's last value [B,H] and every step's value [T,B,H], saved
// [T,B,kSaved*H] or empty); see pick_isa for `mode`.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward(
    const at::Tensor& x_, const at::Tensor& h0_, const std::optional<at::Tensor>& c0_, const at::Tensor& w_ih_,
    const at::Tensor& w_hh_, const at::Tensor& b_ih_, const at::Tensor& b_hh_, const std::optional<at::Tensor>& keep_,
    bool save, int64_t mode) {
  const States init = states_of(h0_, c0_, "forward");
  check_inputs(x_, init, w_ih_, w_hh_, b_ih_, b_hh_, keep_);
  const auto x = x_.contiguous(), w_ih = w_ih_.contiguous(), w_hh = w_hh_.contiguous(), b_hh = b_hh_.contiguous();
  const auto keep = contiguous_opt(keep_);
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = w_hh.size(1);
  const auto bias = Traits::kSplitBias ? b_ih_.contiguous() : b_ih_ + b_hh_;
  const bool small = T * B * I * G * H <= kSmallLinearMacs || I <= kNarrowInputs;
  const auto gx = (small ? small_linear(x.view({T * B, I}), w_ih, bias) : gemm_nt(x.view({T * B, I}), w_ih, bias))
                      .view({T, B, G * H});
  States seqs, last;
  for (int i = 0; i < Traits::kStates; ++i) seqs[i] = pooled_empty({T, B, H}, x.options());
  at::Tensor saved = save ? pooled_empty({T, B, Traits::kSaved * H}, x.options()) : at::empty({0}, x.options());
  const Isa isa = pick_isa(x, mode);
  if (isa == Isa::kGeneric) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rlgru_fused_forward", [&] {
      auto a = sequence<scalar_t>(x, H, keep, init, seqs);
      a.gx = gx.data_ptr<scalar_t>();
      a.bhh = b_hh.data_ptr<scalar_t>();
      a.save = save ? saved.data_ptr<scalar_t>() : nullptr;
      forward_per_step(GenericCell<scalar_t>(), a, init[0], seqs[0], w_hh);
    });
  } else {
    auto a = sequence<float>(x, H, keep, init, seqs);
    a.gx = gx.data_ptr<float>();
    a.bhh = b_hh.data_ptr<float>();
    a.save = save ? saved.data_ptr<float>() : nullptr;
    // small problems (rollout steps) reuse the packing while the weights stay the same; training packs afresh
    const auto packed = T * B < kMinPackedRows ? PackCache::instance().forward_packed(w_hh, G, H, lanes(isa))
                                               : pack_forward(w_hh, G, H, lanes(isa));
    a.wpack = packed.data_ptr<float>();
    with_simd_cell(isa, [&](auto cell) { fwd_seq(cell, a); });
  }
  for (int i = 0; i < Traits::kStates; ++i) last[i] = seqs[i].select(0, T - 1).clone();
  return {seqs[0], last[0], last[1], seqs[1], saved};
}

// Returns (dx, dh0, the second state's initial gradient, dw_ih, dw_hh, db_ih, db_hh); with shared biases db_ih is
// the gradient of both and db_hh stays empty. An input whose gradient is not needed gets an empty tensor
// (need_state covers every state). `c0` and `cs` are the second state's initial value and forward's sequence.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward(
    const at::Tensor& grad_out_, const std::optional<at::Tensor>& grad_h_, const std::optional<at::Tensor>& grad_c_,
    const at::Tensor& x_, const at::Tensor& h0_, const std::optional<at::Tensor>& c0_, const at::Tensor& w_ih_,
    const at::Tensor& w_hh_, const at::Tensor& out_, const std::optional<at::Tensor>& cs_, const at::Tensor& saved_,
    const std::optional<at::Tensor>& keep_, bool need_x, bool need_state, bool need_w, int64_t mode) {
  const char* name = Traits::kName;
  const States init = states_of(h0_, c0_, "backward");
  const States seqs = states_of(out_, cs_, "backward");
  const auto x = x_.contiguous(), w_ih = w_ih_.contiguous(), w_hh = w_hh_.contiguous();
  const auto saved = saved_.contiguous(), dout = grad_out_.contiguous();
  const auto keep = contiguous_opt(keep_);
  const States dlast{grad_h_.has_value() ? grad_h_->contiguous() : at::Tensor(),
                     grad_c_.has_value() ? grad_c_->contiguous() : at::Tensor()};
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = w_hh.size(1);
  TORCH_CHECK(saved.sizes() == at::IntArrayRef({T, B, Traits::kSaved * H}), name, " backward: forward did not save");
  for (int i = 1; i < Traits::kStates; ++i) {
    TORCH_CHECK(seqs[i].sizes() == at::IntArrayRef({T, B, H}), name, " backward: bad state sequence shape");
  }
  TORCH_CHECK(dout.sizes() == at::IntArrayRef({T, B, H}), name, " backward: bad grad_out shape");
  auto dgx = pooled_empty({T, B, G * H}, x.options());
  auto dgh = Traits::kSplitBias ? pooled_empty({T, B, G * H}, x.options()) : dgx;
  auto carry = at::empty({B, H}, x.options());
  States dinit;
  for (int i = 0; i < Traits::kStates; ++i) dinit[i] = at::empty({B, H}, x.options());
  const Isa isa = pick_isa(x, mode);
  auto fill = [&](auto& a) {
    using S = std::remove_pointer_t<decltype(a.save)>;
    a.save = saved.data_ptr<S>();
    a.dout = dout.data_ptr<S>();
    for (int i = 0; i < Traits::kStates; ++i) {
      a.dlast[i] = ptr_or_null<S>(dlast[i]);
      a.dinit[i] = dinit[i].data_ptr<S>();
    }
    a.dgx = dgx.data_ptr<S>();
    a.dgh = dgh.data_ptr<S>();
    a.carry = carry.data_ptr<S>();
  };
  if (isa == Isa::kGeneric) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rlgru_fused_backward", [&] {
      auto a = sequence<scalar_t>(x, H, keep, init, seqs);
      fill(a);
      backward_per_step(GenericCell<scalar_t>(), a, dgh, w_hh);
    });
  } else {
    const auto packed = pack_backward(w_hh, G, H, lanes(isa));
    auto a = sequence<float>(x, H, keep, init, seqs);
    fill(a);
    a.wpack = packed.data_ptr<float>();
    with_simd_cell(isa, [&](auto cell) { bwd_seq(cell, a); });
  }
  const auto empty = at::empty({0}, x.options());
  at::Tensor dx = empty, dw_ih = empty, dw_hh = empty, db_ih = empty, db_hh = empty;
  const auto dgx2 = dgx.view({T * B, G * H}), dgh2 = dgh.view({T * B, G * H}), x2 = x.view({T * B, I});
  if (need_x) dx = gemm_nt(dgx2, w_ih.t().contiguous(), std::nullopt).view({T, B, I});
  if (need_w) {
    // dW = dG^T @ input, a reduction over the long time*batch axis. oneDNN wants that axis contiguous in both
    // operands, hence the transposes (a shared dG's once, for both weights; the column sums are the bias
    // gradients); h_prev is what each step saw: h0 then the outputs, zeroed at resets.
    if (isa != Isa::kGeneric && onednn_usable(x)) {
      auto hprev_t = pooled_empty({H, T * B}, x.options());
      const float* kp = keep ? keep->data_ptr<float>() : nullptr;
      transpose_into(isa, init[0].data_ptr<float>(), B, H, hprev_t.data_ptr<float>(), T * B, kp);
      if (T > 1) {
        transpose_into(isa, seqs[0].data_ptr<float>(), (T - 1) * B, H, hprev_t.data_ptr<float>() + B, T * B,
                       kp ? kp + B : nullptr);
      }
      const auto dgx_t = transposed(isa, dgx2, &db_ih);
      dw_ih = gemm_nt(dgx_t, transposed(isa, x2), std::nullopt);
      dw_hh = gemm_nt(Traits::kSplitBias ? transposed(isa, dgh2, &db_hh) : dgx_t, hprev_t, std::nullopt);
    } else {
      auto hprev = at::cat({init[0].unsqueeze(0), seqs[0].narrow(0, 0, T - 1)}, 0);
      if (keep.has_value()) hprev.mul_(keep->unsqueeze(-1));
      dw_ih = at::mm(dgx2.t(), x2);
      dw_hh = at::mm(dgh2.t(), hprev.view({T * B, H}));
      db_ih = dgx2.sum(0);
      if (Traits::kSplitBias) db_hh = dgh2.sum(0);
    }
  }
  if (!Traits::kSplitBias) db_hh = at::Tensor();
  if (!need_state) dinit = {empty, Traits::kStates > 1 ? empty : at::Tensor()};
  return {dx, dinit[0], dinit[1], dw_ih, dw_hh, db_ih, db_hh};
}

// ---------------------------------------------------------------------------------------------------------
// Two independent cells in one call: an actor's and a critic's core over the same minibatch. One trip through the
// dispatcher and autograd instead of two and, where the machine has a second core, the two cells at once (see
// pair_threads.h): their recurrences are serial inside but independent of each other.

using rlgru_parallel::run_both;

using OptionalTensors = c10::List<std::optional<at::Tensor>>;

at::Tensor required(const OptionalTensors& args, size_t i, const char* what) {
  const std::optional<at::Tensor> t = args.get(i);
  TORCH_CHECK(t.has_value(), Traits::kName, " pair: ", what, " is required");
  return *t;
}

// a, b: [x, h0, c0?, w_ih, w_hh, b_ih, b_hh]. Returns forward's five results for a, then for b.
std::vector<at::Tensor> forward_pair(const OptionalTensors& a, const OptionalTensors& b,
                                     const std::optional<at::Tensor>& keep, bool save, int64_t mode) {
  TORCH_CHECK(a.size() == 7 && b.size() == 7, Traits::kName, " pair: each side takes 7 tensors");
  const OptionalTensors* sides[2] = {&a, &b};
  std::array<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>, 2> results;
  const auto x = required(a, 0, "x");
  run_both(x.size(0) * x.size(1), [&](int64_t i) {
    const auto& s = *sides[i];
    results[i] = forward(required(s, 0, "x"), required(s, 1, "h0"), s.get(2), required(s, 3, "w_ih"),
                         required(s, 4, "w_hh"), required(s, 5, "b_ih"), required(s, 6, "b_hh"), keep, save, mode);
  });
  std::vector<at::Tensor> out;
  for (const auto& r : results) {
    out.insert(out.end(), {std::get<0>(r), std::get<1>(r), std::get<2>(r), std::get<3>(r), std::get<4>(r)});
  }
  return out;
}

// a, b: [grad_out, grad_h?, grad_c?, x, h0, c0?, w_ih, w_hh, out, cs?, saved]; need: need_x, need_state, need_w
// for a, then for b. Returns backward's seven results for a, then for b.
std::vector<at::Tensor> backward_pair(const OptionalTensors& a, const OptionalTensors& b,
                                      const std::optional<at::Tensor>& keep, at::IntArrayRef need, int64_t mode) {
  TORCH_CHECK(a.size() == 11 && b.size() == 11 && need.size() == 6, Traits::kName,
              " pair backward: each side takes 11 tensors and 3 flags");
  const OptionalTensors* sides[2] = {&a, &b};
  using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
  std::array<Grads, 2> results;
  const auto x = required(a, 3, "x");
  run_both(x.size(0) * x.size(1), [&](int64_t i) {
    const auto& s = *sides[i];
    results[i] = backward(required(s, 0, "grad_out"), s.get(1), s.get(2), required(s, 3, "x"), required(s, 4, "h0"),
                          s.get(5), required(s, 6, "w_ih"), required(s, 7, "w_hh"), required(s, 8, "out"), s.get(9),
                          required(s, 10, "saved"), keep, need[3 * i] != 0, need[3 * i + 1] != 0,
                          need[3 * i + 2] != 0, mode);
  });
  std::vector<at::Tensor> out;
  for (const auto& r : results) {
    out.insert(out.end(), {std::get<0>(r), std::get<1>(r), std::get<2>(r), std::get<3>(r), std::get<4>(r),
                           std::get<5>(r), std::get<6>(r)});
  }
  return out;
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

// The operators, in the torch.ops namespace of the TORCH_LIBRARY block that calls this. `c0`, `grad_c` and `cs`
// are the second state's (None for one-state cells); undefined results come back as None.
void register_ops(torch::Library& m) {
  m.def(
      "forward(Tensor x, Tensor h0, Tensor? c0, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, Tensor? keep, "
      "bool save, int mode) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
      &forward);
  m.def(
      "backward(Tensor grad_out, Tensor? grad_h, Tensor? grad_c, Tensor x, Tensor h0, Tensor? c0, Tensor w_ih, "
      "Tensor w_hh, Tensor out, Tensor? cs, Tensor saved, Tensor? keep, bool need_x, bool need_state, bool need_w, "
      "int mode) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)",
      &backward);
  m.def("forward_pair(Tensor?[] a, Tensor?[] b, Tensor? keep, bool save, int mode) -> Tensor[]", &forward_pair);
  m.def("backward_pair(Tensor?[] a, Tensor?[] b, Tensor? keep, int[] need, int mode) -> Tensor[]", &backward_pair);
  m.def("isa() -> str", &isa_name);
  m.def("onednn_gemm() -> bool", &onednn_gemm);
  m.def("release_cached_memory() -> ()", &release_cached_memory);
}
