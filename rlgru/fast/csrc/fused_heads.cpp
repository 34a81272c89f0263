// The PPO loss from the memory cores' outputs onwards, and its gradient, in one call (rlgru.fast.heads); the maths
// and why are in ppo_heads.h, which the fused cells' whole-minibatch operator shares.

#include <torch/library.h>

#include "pair_threads.h"
#include "ppo_heads.h"

namespace rlgru_fused_heads {
namespace {

using namespace rlgru_heads;

// Inputs as rlgru.fast.heads passes them; returns [loss, pg, value, entropy, kl, clip_fraction, log_prob, values]
// and, with `with_grads`, the gradients of core_pi, core_vf and of every weight in input order (log_std last).
std::vector<at::Tensor> loss(const at::Tensor& core_pi, const at::Tensor& core_vf, at::TensorList pi_weights,
                             at::TensorList vf_weights, at::TensorList heads, const std::optional<at::Tensor>& log_std,
                             const at::Tensor& actions, const at::Tensor& old_log_prob, const at::Tensor& advantages,
                             const at::Tensor& returns, const at::Tensor& old_values, double clip,
                             std::optional<double> clip_vf, double ent_coef, double vf_coef,
                             at::IntArrayRef pi_act, at::IntArrayRef vf_act, int64_t kind, at::IntArrayRef dims,
                             bool with_grads) {
  TORCH_CHECK(core_pi.device().is_cpu() && core_pi.dim() == 2 && core_vf.dim() == 2, "fused heads: CPU [N, H] inputs");
  const auto args = heads_args(pi_weights, vf_weights, heads, log_std, actions, old_log_prob, advantages, returns,
                               old_values, clip, clip_vf, ent_coef, vf_coef, pi_act, vf_act, kind, dims, with_grads,
                               core_pi.scalar_type());
  ActorSide actor;
  CriticSide critic;
  rlgru_parallel::run_both(core_pi.size(0), [&](int64_t side) {
    if (side == 0) actor = actor_side(core_pi, args);
    else critic = critic_side(core_vf, args);
  });
  auto out = loss_outputs(actor, critic, args);
  if (with_grads) out.insert(out.begin() + 8, {actor.grad_in, critic.grad_in});
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
