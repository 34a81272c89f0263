// Included by kernel_cell.h once per pass (RLGRU_KERNEL_PASS: 0 generic, 2 AVX2, 3 AVX-512), inside that pass's
// namespace and, for the SIMD passes, under its `#pragma GCC target`, right before the cell's kernel section: the
// lane types `Ops` (scalars for pass 0, AVX2 or AVX-512 vectors otherwise) with their exp / sigmoid / tanh, the SIMD
// transposer, and the sequence drivers every cell plugs its gate math into (bottom). No include guard: each pass
// needs its own copy.

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

// ---------------------------------------------------------------------------------------------------------
// Sequence drivers, shared by every cell. The cell's kernel section defines, after this header,
// `template <class O> struct Cell` with the constants kernel_host.h lists (kName, kGates, kStates, kSaved,
// kSplitBias), V = O::V, and its gate math on lanes, free of memory and indexing (G gates, NS states):
//   forward(k, gx[G], gh[G], bh[G], prev[NS], next[NS], save[kSaved])
//       one step: k the keep mask, gx = W_ih x (+ bias) and gh = h_prev @ W_hh^T (unmasked h_prev) per gate
//       block, bh = b_hh's blocks (split-bias cells), prev = the masked previous states; writes the new states
//       and what backward needs;
//   backward(dh, dc, save[kSaved], prev[NS], dgx[G], dgh[G], carry)
//       one step back given dL/dh_t and, for a second state, dL/dc_t: the input-side and recurrent-side
//       pre-activation gradients (dgh is ignored where the cell shares dG) and the carry, the gradient that goes
//       straight to the previous step's last state.
// Drivers take the cell as an empty first argument where the host calls them, so it reaches each pass's copy by
// argument-dependent lookup.

// Lanes O of a cell Cell<O>.
template <class C>
struct LanesOf;
template <template <class> class CellT, class O>
struct LanesOf<CellT<O>> {
  using type = O;
};
template <class C>
using Lanes = typename LanesOf<C>::type;
template <class C>
using ScalarOf = typename Lanes<C>::S;

// Blocks of H values, block j at p + j * H (gate blocks, saved activations): nv lanes of each.
template <class O, int N>
RLGRU_INLINE void load_blocks(typename O::V (&v)[N], const typename O::S* p, int64_t H, int nv) {
#pragma GCC unroll 8
  for (int j = 0; j < N; ++j) v[j] = O::loadn(p + j * H, nv);
}

template <class O, int N>
RLGRU_INLINE void store_blocks(typename O::S* p, int64_t H, int nv, const typename O::V (&v)[N]) {
#pragma GCC unroll 8
  for (int j = 0; j < N; ++j) O::storen(p + j * H, v[j], nv);
}

// out = {vs...}: how gate math fills its output blocks.
template <class V, int N, class... Vs>
RLGRU_INLINE void set_blocks(V (&out)[N], Vs... vs) {
  static_assert(sizeof...(Vs) == N, "one value per block");
  int j = 0;
  ((out[j++] = vs), ...);
}

// The states before step t of row b, units u0..u0+nv, masked by keep k.
template <class C>
RLGRU_INLINE void load_prev(typename Lanes<C>::V (&prev)[C::kStates], const Seq<ScalarOf<C>>& a, int64_t t,
                            int64_t b, int64_t u0, int nv, typename Lanes<C>::V k) {
#pragma GCC unroll 2
  for (int j = 0; j < C::kStates; ++j) prev[j] = Lanes<C>::loadn(a.prev(j, t) + b * a.H + u0, nv) * k;
}

// Step t's forward gates for units u0..u0+nv of any row, made once per (step, chunk); b_hh's blocks are loaded
// once here for cells that keep b_hh apart.
template <class C>
struct FwdChunk {
  using O = Lanes<C>;
  using S = typename O::S;
  using V = typename O::V;
  static constexpr int G = C::kGates;

  const Seq<S>& a;
  int64_t t, u0;
  int nv;
  V bh[G];

  RLGRU_INLINE FwdChunk(const Seq<S>& seq, int64_t step, int64_t unit, int n) : a(seq), t(step), u0(unit), nv(n) {
    if constexpr (C::kSplitBias) load_blocks<O>(bh, seq.bhh + unit, seq.H, n);
  }

  // Row b given gh = h_prev @ W_hh^T of each gate block: writes the step's states and, training, what backward
  // needs.
  RLGRU_INLINE void row(int64_t b, const V (&gh)[G]) const {
    const int64_t H = a.H, i = a.row(t, b);
    const V k = O::set1(a.keep_at(t, b));
    V gx[G], prev[C::kStates], next[C::kStates], save[C::kSaved];
    load_blocks<O>(gx, a.gx + i * G * H + u0, H, nv);
    load_prev<C>(prev, a, t, b, u0, nv, k);
    C::forward(k, gx, gh, bh, prev, next, save);
#pragma GCC unroll 2
    for (int j = 0; j < C::kStates; ++j) O::storen(a.seq[j] + i * H + u0, next[j], nv);
    if (a.save != nullptr) store_blocks<O>(a.save + i * C::kSaved * H + u0, H, nv, save);
  }
};

// Step t's backward gates for row b, units u0..u0+nv, given dL/dh_t (dh) and, for a second state, dL/dc_t (dc).
template <class C>
RLGRU_INLINE void backward_row(const Seq<ScalarOf<C>>& a, int64_t t, int64_t b, int64_t u0, int nv,
                               typename Lanes<C>::V dh, typename Lanes<C>::V dc) {
  using O = Lanes<C>;
  using V = typename O::V;
  constexpr int G = C::kGates;
  const int64_t H = a.H, i = a.row(t, b);
  V save[C::kSaved], prev[C::kStates], dgx[G], dgh[G], carry;
  load_blocks<O>(save, a.save + i * C::kSaved * H + u0, H, nv);
  load_prev<C>(prev, a, t, b, u0, nv, O::set1(a.keep_at(t, b)));
  C::backward(dh, dc, save, prev, dgx, dgh, carry);
  store_blocks<O>(a.dgx + i * G * H + u0, H, nv, dgx);
  if constexpr (C::kSplitBias) store_blocks<O>(a.dgh + i * G * H + u0, H, nv, dgh);
  O::storen(a.carry + b * H + u0, carry, nv);
}

// Forward gates of step t from gh = h_prev @ W_hh^T [B, G*H] computed elsewhere: the generic path, and small
// problems, where packing W_hh would cost more than the GEMM.
template <class C>
void gates_step(C, const Seq<ScalarOf<C>>& a, int64_t t, const ScalarOf<C>* gh) {
  using O = Lanes<C>;
  constexpr int G = C::kGates;
  const int64_t H = a.H;
  for (int64_t u0 = 0; u0 < H; u0 += O::W) {
    const int nv = static_cast<int>(std::min<int64_t>(O::W, H - u0));
    const FwdChunk<C> f(a, t, u0, nv);
    for (int64_t b = 0; b < a.B; ++b) {
      typename O::V g[G];
      load_blocks<O>(g, gh + b * G * H + u0, H, nv);
      f.row(b, g);
    }
  }
}

// Backward gates of the last step, whose gradients come from the output and the last states alone; units
// [u_begin, u_end) of every row.
template <class C>
void bwd_last(C, const Seq<ScalarOf<C>>& a, int64_t u_begin, int64_t u_end) {
  using O = Lanes<C>;
  using V = typename O::V;
  const int64_t H = a.H, t = a.T - 1;
  for (int64_t b = 0; b < a.B; ++b) {
    for (int64_t u0 = u_begin; u0 < u_end; u0 += O::W) {
      const int nv = static_cast<int>(std::min<int64_t>(O::W, u_end - u0));
      V dh = O::loadn(a.dout + a.row(t, b) * H + u0, nv);
      if (a.dlast[0] != nullptr) dh = dh + O::loadn(a.dlast[0] + b * H + u0, nv);
      const V dc = C::kStates > 1 && a.dlast[1] != nullptr ? O::loadn(a.dlast[1] + b * H + u0, nv) : O::set1(0);
      backward_row<C>(a, t, b, u0, nv, dh, dc);
    }
  }
}

// Given acc = (dG_t @ W_hh)[b, u0..u0+nv], the gradients that reach the states before step t through it, masked by
// step t's resets: with GATES, step t-1's gates; without (t = 0), the initial states' gradients. The carry goes to
// the cell's last state: h for a one-state cell, the second state otherwise.
template <class C, bool GATES>
RLGRU_INLINE void back(const Seq<ScalarOf<C>>& a, int64_t t, int64_t b, int64_t u0, int nv, typename Lanes<C>::V acc) {
  using O = Lanes<C>;
  using V = typename O::V;
  const int64_t H = a.H;
  const V carry = O::loadn(a.carry + b * H + u0, nv);
  const V k = O::set1(a.keep_at(t, b));
  V dh = acc;
  if constexpr (C::kStates == 1) dh = acc + carry;
  dh = dh * k;
  const V dc = carry * k;  // unused by one-state cells
  if constexpr (GATES) {
    backward_row<C>(a, t - 1, b, u0, nv, dh + O::loadn(a.dout + a.row(t - 1, b) * H + u0, nv), dc);
  } else {
    O::storen(a.dinit[0] + b * H + u0, dh, nv);
    if constexpr (C::kStates > 1) O::storen(a.dinit[1] + b * H + u0, dc, nv);
  }
}

template <class C, bool GATES>
void back_rows(const Seq<ScalarOf<C>>& a, int64_t t, const ScalarOf<C>* prod) {
  using O = Lanes<C>;
  for (int64_t b = 0; b < a.B; ++b) {
    for (int64_t u0 = 0; u0 < a.H; u0 += O::W) {
      const int nv = static_cast<int>(std::min<int64_t>(O::W, a.H - u0));
      back<C, GATES>(a, t, b, u0, nv, O::loadn(prod + b * a.H + u0, nv));
    }
  }
}

// Backward through step t given prod = dG_t @ W_hh [B, H] computed elsewhere (the generic path).
template <class C>
void bwd_from_product(C, const Seq<ScalarOf<C>>& a, int64_t t, const ScalarOf<C>* prod) {
  if (t >= 1) {
    back_rows<C, true>(a, t, prod);
  } else {
    back_rows<C, false>(a, t, prod);
  }
}

#if RLGRU_KERNEL_PASS != 0
// ---------------------------------------------------------------------------------------------------------
// SIMD tiles (float32). A tile is MR batch rows times one or more chunks of W hidden units; a step's recurrent
// GEMM runs tile by tile and each tile's epilogue applies the cell's gates in registers.

using V = Ops::V;
constexpr int W = Ops::W;
// Register tiles: AVX-512 has 32 vector registers, AVX2 16.
template <int G>
constexpr int kFwdRows = (W == 16 ? 24 : 12) / G;  // rows x G gates: 24 / 12 accumulators
constexpr int kBwdRows = W == 16 ? 8 : 6;           // times kBwdChunks: 24 / 12 accumulators
constexpr int kBwdChunks = W == 16 ? 3 : 2;

// Rows b0..b0+MR of h_prev @ W_hh^T for one chunk (wp: its packed weights [H][G][W]), then the gates.
template <class C, int MR>
RLGRU_INLINE void fwd_tile(const FwdChunk<C>& f, const float* hp, const float* wp, int64_t H, int64_t b0) {
  constexpr int G = C::kGates;
  static_assert(G == 3 || G == 4, "three or four gate blocks");
  // One accumulator array per gate block, indexed by constants only, so that they stay in registers.
  V acc0[MR], acc1[MR], acc2[MR], acc3[MR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) acc0[m] = acc1[m] = acc2[m] = acc3[m] = Ops::set1(0.0f);
  for (int64_t k = 0; k < H; ++k, wp += G * W) {
    const V w0 = Ops::load(wp), w1 = Ops::load(wp + W), w2 = Ops::load(wp + 2 * W);
    const V w3 = G > 3 ? Ops::load(wp + 3 * W) : w0;
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const V a = Ops::set1(hp[m * H + k]);
      acc0[m] = Ops::fma(a, w0, acc0[m]);
      acc1[m] = Ops::fma(a, w1, acc1[m]);
      acc2[m] = Ops::fma(a, w2, acc2[m]);
      if constexpr (G > 3) acc3[m] = Ops::fma(a, w3, acc3[m]);
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    V gh[G];
    gh[0] = acc0[m];
    gh[1] = acc1[m];
    gh[2] = acc2[m];
    if constexpr (G > 3) gh[3] = acc3[m];
    f.row(b0 + m, gh);
  }
}

// The forward recurrence; a step's groups are its chunks of W hidden units (all rows), so a chunk's packed
// weights stay in cache across row tiles.
template <class C>
void fwd_seq(C, const Seq<float>& a) {
  constexpr int G = C::kGates, MR = kFwdRows<G>;
  const int64_t H = a.H, B = a.B;
  const int64_t nchunks = (H + W - 1) / W;
  run_steps(a.T, nchunks, [&](int64_t t, int64_t c) {
    const int64_t u0 = c * W;
    const FwdChunk<C> f(a, t, u0, static_cast<int>(std::min<int64_t>(W, H - u0)));
    const float* hp = a.prev(0, t);
    const float* wp = a.wpack + c * H * G * W;
    int64_t b0 = 0;
    for (; b0 + MR <= B; b0 += MR) fwd_tile<C, MR>(f, hp + b0 * H, wp, H, b0);
    for (; b0 + 4 <= B; b0 += 4) fwd_tile<C, 4>(f, hp + b0 * H, wp, H, b0);
    for (; b0 + 2 <= B; b0 += 2) fwd_tile<C, 2>(f, hp + b0 * H, wp, H, b0);
    for (; b0 < B; ++b0) fwd_tile<C, 1>(f, hp + b0 * H, wp, H, b0);
  });
}

// Rows b0..b0+MR of dG_t @ W_hh for NC chunks starting at c0 (W_hh packed [chunks][G*H][W]), then `back`.
template <class C, int MR, int NC, bool GATES>
RLGRU_INLINE void bwd_tile(const Seq<float>& a, int64_t t, int64_t b0, int64_t c0) {
  static_assert(NC >= 1 && NC <= 3, "one to three chunks per tile");
  const int64_t H = a.H, K = C::kGates * H;
  const float* wp0 = a.wpack + c0 * K * W;
  const float* wp1 = wp0 + K * W;
  const float* wp2 = wp1 + K * W;
  const float* ap = a.dgh + a.row(t, b0) * K;
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
      const V av = Ops::set1(ap[m * K + k]);
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
      back<C, GATES>(a, t, b0 + m, u0, nv, j == 0 ? acc0[m] : (j == 1 ? acc1[m] : acc2[m]));
    }
  }
}

template <class C, int NC, bool GATES>
RLGRU_INLINE void bwd_rows(const Seq<float>& a, int64_t t, int64_t c0) {
  constexpr int MR = kBwdRows;
  const int64_t B = a.B;
  int64_t b0 = 0;
  for (; b0 + MR <= B; b0 += MR) bwd_tile<C, MR, NC, GATES>(a, t, b0, c0);
  for (; b0 + 4 <= B; b0 += 4) bwd_tile<C, 4, NC, GATES>(a, t, b0, c0);
  for (; b0 + 2 <= B; b0 += 2) bwd_tile<C, 2, NC, GATES>(a, t, b0, c0);
  for (; b0 < B; ++b0) bwd_tile<C, 1, NC, GATES>(a, t, b0, c0);
}

template <class C, bool GATES>
void bwd_step(const Seq<float>& a, int64_t t, int64_t c_begin, int64_t c_end) {
  constexpr int NC = kBwdChunks;
  int64_t c = c_begin;
  for (; c + NC <= c_end; c += NC) bwd_rows<C, NC, GATES>(a, t, c);
  if (c_end - c == 2) bwd_rows<C, 2, GATES>(a, t, c);
  if (c_end - c == 1) bwd_rows<C, 1, GATES>(a, t, c);
}

// The backward recurrence. Step i = 0 is the plain gate pass of t = T-1; step i = 1..T runs the GEMM of t = T-i,
// whose epilogue does the gate pass of t-1 (or writes the initial states' gradients for t = 0). Groups are
// kBwdChunks chunks of W hidden units.
template <class C>
void bwd_seq(C cell, const Seq<float>& a) {
  const int64_t H = a.H, T = a.T;
  const int64_t nchunks = (H + W - 1) / W;
  const int64_t ngroups = (nchunks + kBwdChunks - 1) / kBwdChunks;
  run_steps(T + 1, ngroups, [&](int64_t i, int64_t g) {
    const int64_t t = T - i;
    const int64_t c0 = g * kBwdChunks, c1 = std::min(nchunks, c0 + kBwdChunks);
    if (i == 0) {
      bwd_last(cell, a, c0 * W, std::min(H, c1 * W));
    } else if (t >= 1) {
      bwd_step<C, true>(a, t, c0, c1);
    } else {
      bwd_step<C, false>(a, t, c0, c1);
    }
  });
}

#endif  // RLGRU_KERNEL_PASS != 0
