// The PPO heads and loss after the memory cores, and their gradient: shared by the standalone loss operator
// (rlgru/fast/csrc/fused_heads.cpp, rlgru.fast.heads) and the whole-minibatch operator of each fused cell
// (kernel_host.h, rlgru.fast.update). The actor's side (its MLP, the action layer, the policy terms) and the
// critic's (its MLP, the value layer, the value loss) share nothing, so each is one function and callers may run
// them on two cores (pair_threads.h).
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

#ifndef RLGRU_PPO_HEADS_H
#define RLGRU_PPO_HEADS_H

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace rlgru_heads {
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
    // relu: out > 0 exactly where the pre-activation is; tanh: 1 - out^2. One ATen op each.
    grad = activations[i] == kRelu ? at::threshold_backward(grad, out, 0) : at::tanh_backward(grad, out);
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

// Actor rows: log-probs, entropies, the clipped surrogate and (when `grad_head` is given) the gradients of the
// action head's output and of log_std. Returns the sums the means come from: min(surrogates), entropy, kl, clipped.
template <typename S>
std::array<double, 4> actor_rows(int64_t kind, at::IntArrayRef dims, const S* head, int64_t width, const S* log_std,
                                 const S* actions, const S* old_lp, const S* adv, int64_t N, const Scalars& k,
                                 S* log_prob_out, S* grad_head, S* grad_log_std) {
  std::array<double, 4> sums{0, 0, 0, 0};
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
    sums[0] += std::min(s1, s2);
    sums[1] += ent;
    sums[2] += (r - 1) - log_ratio;
    sums[3] += std::abs(r - 1) > static_cast<S>(k.clip) ? 1 : 0;
    log_prob_out[i] = lp;
    if (grad_head == nullptr) continue;

    const S tie = s1 == s2 ? S(0.5) : S(0);
    const S to_s1 = (s1 < s2 ? S(1) : S(0)) + tie;
    const S to_s2 = ((s1 > s2 ? S(1) : S(0)) + tie) * (r >= lo && r <= hi ? S(1) : S(0));
    const S g_lp = -inv_n * adv[i] * (to_s1 + to_s2) * r;
    const S g_ent = -static_cast<S>(k.ent_coef) * inv_n;
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

// Critic rows: (clipped) values, the squared-error sum and (when `grad_values` is given) the values' gradients.
template <typename S>
double critic_rows(const S* ret, const S* old_v, const S* values, int64_t N, const Scalars& k, S* values_out,
                   S* grad_values) {
  double sum_sq = 0;
  const S inv_n = S(1) / static_cast<S>(N);
  for (int64_t i = 0; i < N; ++i) {
    const S v = values[i];
    const S c_v = static_cast<S>(k.clip_vf);
    const S vc = k.has_clip_vf ? old_v[i] + std::min(std::max(v - old_v[i], -c_v), c_v) : v;
    const S err = ret[i] - vc;
    sum_sq += err * err;
    values_out[i] = vc;
    if (grad_values == nullptr) continue;
    S g_v = -2 * static_cast<S>(k.vf_coef) * inv_n * err;
    if (k.has_clip_vf && std::abs(v - old_v[i]) > static_cast<S>(k.clip_vf)) g_v = 0;
    grad_values[i] = g_v;
  }
  return sum_sq;
}

template <typename S>
S* ptr(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<S>() : nullptr;
}

// Everything the heads need besides the cores' outputs; vectors own copies (callers may run sides on two threads).
struct HeadsArgs {
  std::vector<at::Tensor> pi_weights, vf_weights, heads;  // heads: action W, b, value W, b
  at::Tensor log_std;                                     // undefined unless Gaussian
  at::Tensor actions, old_log_prob, advantages, returns, old_values;
  Scalars k;
  std::vector<int64_t> pi_act, vf_act, dims;
  int64_t kind;
  bool with_grads;
};

HeadsArgs heads_args(at::TensorList pi_weights, at::TensorList vf_weights, at::TensorList heads,
                     const std::optional<at::Tensor>& log_std, const at::Tensor& actions,
                     const at::Tensor& old_log_prob, const at::Tensor& advantages, const at::Tensor& returns,
                     const at::Tensor& old_values, double clip, std::optional<double> clip_vf, double ent_coef,
                     double vf_coef, at::IntArrayRef pi_act, at::IntArrayRef vf_act, int64_t kind,
                     at::IntArrayRef dims, bool with_grads, at::ScalarType dtype) {
  TORCH_CHECK(pi_weights.size() == 2 * pi_act.size() && vf_weights.size() == 2 * vf_act.size() && heads.size() == 4,
              "fused heads: two tensors per MLP layer and four head tensors");
  TORCH_CHECK(kind == kGaussian ? log_std.has_value() : !dims.empty(), "fused heads: a Gaussian needs log_std, a "
              "categorical its action dims");
  const auto cast = [&](const at::Tensor& t) { return t.to(dtype).contiguous(); };
  HeadsArgs a;
  a.pi_weights.assign(pi_weights.begin(), pi_weights.end());
  a.vf_weights.assign(vf_weights.begin(), vf_weights.end());
  a.heads.assign(heads.begin(), heads.end());
  if (log_std.has_value()) a.log_std = cast(*log_std);
  const int64_t N = old_log_prob.numel();
  a.actions = cast(actions.reshape({N, -1}));
  a.old_log_prob = cast(old_log_prob);
  a.advantages = cast(advantages);
  a.returns = cast(returns);
  a.old_values = cast(old_values);
  a.k = Scalars{clip, clip_vf.value_or(0.0), ent_coef, vf_coef, clip_vf.has_value()};
  a.pi_act.assign(pi_act.begin(), pi_act.end());
  a.vf_act.assign(vf_act.begin(), vf_act.end());
  a.dims.assign(dims.begin(), dims.end());
  a.kind = kind;
  a.with_grads = with_grads;
  return a;
}

struct ActorSide {
  at::Tensor log_prob, grad_in;  // grad_in: of the actor MLP's input (the core's output)
  std::vector<at::Tensor> grads;  // actor MLP layers, action W, action b, then log_std if Gaussian
  std::array<double, 4> sums{};   // min(surrogates), entropy, kl, clipped
};

struct CriticSide {
  at::Tensor values, grad_in;
  std::vector<at::Tensor> grads;  // critic MLP layers, value W, value b
  double sum_sq = 0;
};

ActorSide actor_side(const at::Tensor& core_pi, const HeadsArgs& a) {
  TORCH_CHECK(core_pi.device().is_cpu() && core_pi.dim() == 2, "fused heads: CPU [N, H] inputs");
  const int64_t N = core_pi.size(0);
  ActorSide r;
  const auto& pw = a.pi_weights;
  r.grads.resize(pw.size() + 2 + (a.kind == kGaussian ? 1 : 0));
  const auto outs = mlp_forward(core_pi, pw, a.pi_act);
  const auto head = at::addmm(a.heads[1], outs.back(), a.heads[0].t()).contiguous();
  const int64_t width = head.size(1);
  r.log_prob = at::empty({N}, head.options());
  at::Tensor grad_head, grad_log_std;
  if (a.with_grads) {
    grad_head = at::empty_like(head);
    grad_log_std = a.kind == kGaussian ? at::zeros({width}, head.options()) : at::Tensor();
  }
  AT_DISPATCH_FLOATING_TYPES(head.scalar_type(), "rlgru_fused_heads_actor", [&] {
    r.sums = actor_rows<scalar_t>(a.kind, a.dims, ptr<scalar_t>(head), width, ptr<scalar_t>(a.log_std),
                                  ptr<scalar_t>(a.actions), ptr<scalar_t>(a.old_log_prob), ptr<scalar_t>(a.advantages),
                                  N, a.k, ptr<scalar_t>(r.log_prob), ptr<scalar_t>(grad_head),
                                  ptr<scalar_t>(grad_log_std));
  });
  if (!a.with_grads) return r;
  r.grads[pw.size()] = grad_head.t().mm(outs.back());
  r.grads[pw.size() + 1] = grad_head.sum(0);
  if (a.kind == kGaussian) r.grads.back() = grad_log_std;
  r.grad_in = mlp_backward(grad_head.mm(a.heads[0]), outs, pw, a.pi_act, r.grads, 0);
  return r;
}

CriticSide critic_side(const at::Tensor& core_vf, const HeadsArgs& a) {
  TORCH_CHECK(core_vf.device().is_cpu() && core_vf.dim() == 2, "fused heads: CPU [N, H] inputs");
  const int64_t N = core_vf.size(0);
  CriticSide r;
  const auto& vw = a.vf_weights;
  r.grads.resize(vw.size() + 2);
  const auto outs = mlp_forward(core_vf, vw, a.vf_act);
  const auto values = at::addmm(a.heads[3], outs.back(), a.heads[2].t()).reshape({N}).contiguous();
  r.values = at::empty({N}, values.options());
  const auto grad_values = a.with_grads ? at::empty({N}, values.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "rlgru_fused_heads_critic", [&] {
    r.sum_sq = critic_rows<scalar_t>(ptr<scalar_t>(a.returns), ptr<scalar_t>(a.old_values), ptr<scalar_t>(values), N,
                                     a.k, ptr<scalar_t>(r.values), ptr<scalar_t>(grad_values));
  });
  if (!a.with_grads) return r;
  const auto grad_value_col = grad_values.unsqueeze(1);
  r.grads[vw.size()] = grad_value_col.t().mm(outs.back());
  r.grads[vw.size() + 1] = grad_value_col.sum(0);
  r.grad_in = mlp_backward(grad_value_col.mm(a.heads[2]), outs, vw, a.vf_act, r.grads, 0);
  return r;
}

// [loss, pg, value, entropy, kl, clip_fraction, log_prob, values]; with gradients, then the weights' gradients in
// the loss operator's input order after core_pi and core_vf: actor MLP, critic MLP, action layer, value layer,
// log_std (the cores' gradients, which callers place themselves, are not included).
std::vector<at::Tensor> loss_outputs(const ActorSide& actor, const CriticSide& critic, const HeadsArgs& a) {
  const double n = static_cast<double>(actor.log_prob.numel());
  const double pg = -actor.sums[0] / n, value = critic.sum_sq / n, entropy = -actor.sums[1] / n;
  const auto options = actor.log_prob.options();
  const auto scalar = [&](double x) { return at::scalar_tensor(x, options); };
  std::vector<at::Tensor> out{scalar(pg + a.k.ent_coef * entropy + a.k.vf_coef * value), scalar(pg), scalar(value),
                              scalar(entropy), scalar(actor.sums[2] / n), scalar(actor.sums[3] / n), actor.log_prob,
                              critic.values};
  if (!a.with_grads) return out;
  const size_t np = a.pi_weights.size(), nv = a.vf_weights.size();
  out.insert(out.end(), actor.grads.begin(), actor.grads.begin() + static_cast<int64_t>(np));
  out.insert(out.end(), critic.grads.begin(), critic.grads.begin() + static_cast<int64_t>(nv));
  out.insert(out.end(), {actor.grads[np], actor.grads[np + 1], critic.grads[nv], critic.grads[nv + 1]});
  if (a.kind == kGaussian) out.push_back(actor.grads.back());
  return out;
}

}  // namespace
}  // namespace rlgru_heads

#endif  // RLGRU_PPO_HEADS_H
