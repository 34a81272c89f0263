// The PPO loss from the memory cores' outputs onwards, and its gradient, in one call (rlgru.fused_heads); and the
// rollout step's actions and values from the same heads (act).
//
// Why: after the cores, a PPO minibatch is two small MLPs, the action and value layers, a log-softmax or Gaussian
// log-density, the ratio, two clipped objectives and a few means: some forty ops forward and as many backward,
// each a few microseconds of dispatch for microseconds of arithmetic at RL sizes (hundreds of rows, tens of
// units). Here the MLPs' matrix products go to ATen (BLAS) and everything per row is one loop, forward and
// backward together: PPO always differentiates the loss right after computing it, so the gradient is computed
// with it and autograd only scales it.
//
// Maths (N rows, mean over rows; A advantages, r = exp(log_prob - old_log_prob), c the clip range):
//   L = -mean(min(A r, A clamp(r, 1-c, 1+c))) + ent_coef * -mean(H) + vf_coef * mean((R - v')^2)
//   dL/dlog_prob = -A r (s + t [1-c <= r <= 1+c]) / N, with s, t torch.min's split of the gradient between its
//     arguments (1/0 where one is smaller, 1/2 each on ties), so the numbers equal autograd's;
//   categorical logits z, p = softmax(z): dlog p_a/dz = onehot(a) - p, dH/dz = -p (log p + H);
//   Gaussian mean m, log std s: dlog_prob/dm = (a - m) / e^{2s}, dlog_prob/ds = ((a - m) / e^s)^2 - 1, dH/ds = 1;
//   value clipping v' = old + clamp(v - old, -c_v, c_v) passes the gradient where |v - old| <= c_v.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace rlgru_fused_heads {
namespace {

enum Kind : int64_t { kCategorical = 0, kGaussian = 1 };
constexpr double kPi = 3.14159265358979323846;
enum Activation : int64_t { kRelu = 0, kTanh = 1 };

// Every layer's output, input first.
std::vector<at::Tensor> mlp_forward(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                                    at::IntArrayRef activations) {
  std::vector<at::Tensor> outs{x};
  for (size_t i = 0; i < activations.size(); ++i) {
    auto z = at::addmm(weights[2 * i + 1], outs.back(), weights[2 * i].t());
    outs.push_back(activations[i] == kRelu ? z.relu_() : z.tanh_());
  }
  return outs;
}

// Gradient of the MLP's input, and [dW1, db1, ...] into `grads` from offset.
at::Tensor mlp_backward(at::Tensor grad, const std::vector<at::Tensor>& outs, const std::vector<at::Tensor>& weights,
                        at::IntArrayRef activations, std::vector<at::Tensor>& grads, size_t offset) {
  for (int64_t i = static_cast<int64_t>(activations.size()) - 1; i >= 0; --i) {
    const auto& out = outs[i + 1];
    grad = activations[i] == kRelu ? grad * out.gt(0) : grad * (1 - out * out);
    grads[offset + 2 * i] = grad.t().mm(outs[i]);
    grads[offset + 2 * i + 1] = grad.sum(0);
    grad = grad.mm(weights[2 * i]);
  }
  return grad;
}

struct Scalars {
  double clip, clip_vf, ent_coef, vf_coef;
  bool has_clip_vf;
};

// Per-row pass: log-probs, entropies, losses and (when `grad_head` is defined) the gradients of the action head's
// output, of the values and of log_std. Returns the sums the means come from: pg, value, entropy, kl, clipped.
template <typename S>
std::array<double, 5> rows(int64_t kind, at::IntArrayRef dims, const S* head, int64_t width, const S* log_std,
                           const S* actions, const S* old_lp, const S* adv, const S* ret, const S* old_v,
                           const S* values, int64_t N, const Scalars& k, S* log_prob_out, S* values_out,
                           S* grad_head, S* grad_values, S* grad_log_std) {
  std::array<double, 5> sums{0, 0, 0, 0, 0};
  const S inv_n = S(1) / static_cast<S>(N);
  const S lo = static_cast<S>(1 - k.clip), hi = static_cast<S>(1 + k.clip);
  const S log_sqrt_2pi = static_cast<S>(std::log(std::sqrt(2 * kPi)));
  const S min_real = std::numeric_limits<S>::lowest();
  const int64_t n_act = kind == kCategorical ? static_cast<int64_t>(dims.size()) : width;
  std::vector<S> work(2 * width);  // per row: log p, p (categorical) or (a - m) / std (Gaussian)
  std::vector<S> seg_entropy(dims.size());
  for (int64_t i = 0; i < N; ++i) {
    const S* z = head + i * width;
    const S* a = actions + i * n_act;
    S lp = 0, ent = 0;
    if (kind == kCategorical) {
      int64_t off = 0;
      for (size_t seg = 0; seg < dims.size(); ++seg) {
        const int64_t d = dims[seg];
        S m = z[off];
        for (int64_t j = 1; j < d; ++j) m = std::max(m, z[off + j]);
        S sum = 0;
        for (int64_t j = 0; j < d; ++j) sum += std::exp(z[off + j] - m);
        const S lse = m + std::log(sum);
        S h = 0;
        for (int64_t j = 0; j < d; ++j) {
          const S log_p = z[off + j] - lse;
          const S p = std::exp(log_p);
          work[off + j] = log_p;
          work[width + off + j] = p;
          h -= std::max(log_p, min_real) * p;
        }
        seg_entropy[seg] = h;
        lp += work[off + static_cast<int64_t>(a[seg])];
        ent += h;
        off += d;
      }
    } else {
      for (int64_t j = 0; j < width; ++j) {
        const S std_j = std::exp(log_std[j]);
        const S diff = a[j] - z[j];
        work[j] = diff / std_j;
        lp += -(diff * diff) / (2 * std_j * std_j) - std::log(std_j) - log_sqrt_2pi;
        ent += S(0.5) + S(0.5) * static_cast<S>(std::log(2 * kPi)) + std::log(std_j);
      }
    }
    const S log_ratio = lp - old_lp[i];
    const S r = std::exp(log_ratio);
    const S s1 = adv[i] * r, s2 = adv[i] * std::min(std::max(r, lo), hi);
    const S v = values[i];
    const S vc = k.has_clip_vf
                     ? old_v[i] + std::min(std::max(v - old_v[i], static_cast<S>(-k.clip_vf)), static_cast<S>(k.clip_vf))
                     : v;
    const S err = ret[i] - vc;
    sums[0] += std::min(s1, s2);
    sums[1] += err * err;
    sums[2] += ent;
    sums[3] += (r - 1) - log_ratio;
    sums[4] += std::abs(r - 1) > static_cast<S>(k.clip) ? 1 : 0;
    log_prob_out[i] = lp;
    values_out[i] = vc;
    if (grad_head == nullptr) continue;

    const S tie = s1 == s2 ? S(0.5) : S(0);
    const S to_s1 = (s1 < s2 ? S(1) : S(0)) + tie;
    const S to_s2 = ((s1 > s2 ? S(1) : S(0)) + tie) * (r >= lo && r <= hi ? S(1) : S(0));
    const S g_lp = -inv_n * adv[i] * (to_s1 + to_s2) * r;
    const S g_ent = -static_cast<S>(k.ent_coef) * inv_n;
    S g_v = -2 * static_cast<S>(k.vf_coef) * inv_n * err;
    if (k.has_clip_vf && std::abs(v - old_v[i]) > static_cast<S>(k.clip_vf)) g_v = 0;
    grad_values[i] = g_v;
    S* gz = grad_head + i * width;
    if (kind == kCategorical) {
      int64_t off = 0;
      for (size_t seg = 0; seg < dims.size(); ++seg) {
        const int64_t d = dims[seg];
        for (int64_t j = 0; j < d; ++j) {
          const S log_p = work[off + j], p = work[width + off + j];
          gz[off + j] = -p * (g_lp + g_ent * (log_p + seg_entropy[seg]));
        }
        gz[off + static_cast<int64_t>(a[seg])] += g_lp;
        off += d;
      }
    } else {
      for (int64_t j = 0; j < width; ++j) {
        const S scaled = work[j];
        gz[j] = g_lp * scaled / std::exp(log_std[j]);
        grad_log_std[j] += g_lp * (scaled * scaled - 1) + g_ent;
      }
    }
  }
  return sums;
}

// Inputs as rlgru.fused_heads passes them; returns [loss, pg, value, entropy, kl, clip_fraction, log_prob, values]
// and, with `with_grads`, the gradients of core_pi, core_vf and of every weight in input order (log_std last).
std::vector<at::Tensor> loss(const at::Tensor& core_pi, const at::Tensor& core_vf, at::TensorList pi_weights,
                             at::TensorList vf_weights, at::TensorList heads, const std::optional<at::Tensor>& log_std_,
                             const at::Tensor& actions_, const at::Tensor& old_log_prob_, const at::Tensor& advantages_,
                             const at::Tensor& returns_, const at::Tensor& old_values_, double clip,
                             std::optional<double> clip_vf, double ent_coef, double vf_coef,
                             at::IntArrayRef pi_act, at::IntArrayRef vf_act, int64_t kind, at::IntArrayRef dims,
                             bool with_grads) {
  TORCH_CHECK(core_pi.device().is_cpu() && core_pi.dim() == 2 && core_vf.dim() == 2, "fused heads: CPU [N, H] inputs");
  TORCH_CHECK(pi_weights.size() == 2 * pi_act.size() && vf_weights.size() == 2 * vf_act.size() && heads.size() == 4,
              "fused heads: two tensors per MLP layer and four head tensors");
  TORCH_CHECK(kind == kGaussian ? log_std_.has_value() : !dims.empty(), "fused heads: a Gaussian needs log_std, a "
              "categorical its action dims");
  const auto dtype = core_pi.scalar_type();
  const int64_t N = core_pi.size(0);
  std::vector<at::Tensor> pw(pi_weights.begin(), pi_weights.end()), vw(vf_weights.begin(), vf_weights.end());
  const auto pi_outs = mlp_forward(core_pi, pw, pi_act);
  const auto vf_outs = mlp_forward(core_vf, vw, vf_act);
  const auto head = at::addmm(heads[1], pi_outs.back(), heads[0].t()).contiguous();
  const auto values = at::addmm(heads[3], vf_outs.back(), heads[2].t()).reshape({N}).contiguous();
  const int64_t width = head.size(1);
  const auto cast = [&](const at::Tensor& t) { return t.to(dtype).contiguous(); };
  const auto actions = cast(actions_.reshape({N, -1})), old_lp = cast(old_log_prob_), adv = cast(advantages_);
  const auto ret = cast(returns_), old_v = cast(old_values_);
  const auto log_std = log_std_.has_value() ? cast(*log_std_) : at::Tensor();
  auto log_prob = at::empty({N}, head.options()), values_out = at::empty({N}, head.options());
  at::Tensor grad_head, grad_values, grad_log_std;
  if (with_grads) {
    grad_head = at::empty_like(head);
    grad_values = at::empty({N}, head.options());
    grad_log_std = kind == kGaussian ? at::zeros({width}, head.options()) : at::Tensor();
  }
  const Scalars k{clip, clip_vf.value_or(0.0), ent_coef, vf_coef, clip_vf.has_value()};
  std::array<double, 5> sums{};
  AT_DISPATCH_FLOATING_TYPES(dtype, "rlgru_fused_heads", [&] {
    auto ptr = [](const at::Tensor& t) { return t.defined() ? t.data_ptr<scalar_t>() : nullptr; };
    sums = rows<scalar_t>(kind, dims, ptr(head), width, ptr(log_std), ptr(actions), ptr(old_lp), ptr(adv), ptr(ret),
                          ptr(old_v), ptr(values), N, k, ptr(log_prob), ptr(values_out), ptr(grad_head),
                          ptr(grad_values), ptr(grad_log_std));
  });
  const double n = static_cast<double>(N);
  const double pg = -sums[0] / n, value = sums[1] / n, entropy = -sums[2] / n;
  const auto scalar = [&](double x) { return at::scalar_tensor(x, head.options()); };
  std::vector<at::Tensor> out{scalar(pg + ent_coef * entropy + vf_coef * value), scalar(pg), scalar(value),
                              scalar(entropy), scalar(sums[3] / n), scalar(sums[4] / n), log_prob, values_out};
  if (!with_grads) return out;

  std::vector<at::Tensor> grads(pw.size() + vw.size() + 4 + (kind == kGaussian ? 1 : 0));
  // in input order: actor MLP, critic MLP, action layer, value layer, log_std
  const size_t head_grads = pw.size() + vw.size();
  grads[head_grads] = grad_head.t().mm(pi_outs.back());
  grads[head_grads + 1] = grad_head.sum(0);
  const auto grad_value_col = grad_values.unsqueeze(1);
  grads[head_grads + 2] = grad_value_col.t().mm(vf_outs.back());
  grads[head_grads + 3] = grad_value_col.sum(0);
  if (kind == kGaussian) grads.back() = grad_log_std;
  const auto grad_pi = mlp_backward(grad_head.mm(heads[0]), pi_outs, pw, pi_act, grads, 0);
  const auto grad_vf = mlp_backward(grad_value_col.mm(heads[2]), vf_outs, vw, vf_act, grads, pw.size());
  out.push_back(grad_pi);
  out.push_back(grad_vf);
  out.insert(out.end(), grads.begin(), grads.end());
  return out;
}

}  // namespace
}  // namespace rlgru_fused_heads

TORCH_LIBRARY(rlgru_fused_heads, m) {
  m.def(
      "loss(Tensor core_pi, Tensor core_vf, Tensor[] pi_weights, Tensor[] vf_weights, Tensor[] heads, Tensor? log_std, "
      "Tensor actions, Tensor old_log_prob, Tensor advantages, Tensor returns, Tensor old_values, float clip, "
      "float? clip_vf, float ent_coef, float vf_coef, int[] pi_act, int[] vf_act, int kind, int[] dims, "
      "bool with_grads) -> Tensor[]",
      &rlgru_fused_heads::loss);
}
