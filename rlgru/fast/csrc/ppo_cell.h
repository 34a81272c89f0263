// PPO on a fused memory cell: a whole minibatch (`ppo_minibatch`) and a rollout step (`act`) for an actor's and a
// critic's core of one cell, in one operator call each. Built here, in the fast-path wing, on the cell's kernel
// from rlgru/cores/csrc (the cores know nothing of PPO): a source defines RLGRU_CELL_SOURCE (the cell, found on
// the cores' include path) and RLGRU_PPO_OPS (its torch.ops namespace) and includes this file, which compiles the
// cell's passes and host code (kernel_cell.h, without the cell's own operators) and then the PPO code beside them
// in the same anonymous namespace, so it calls the cell's drivers directly, with no dispatcher in between.

#if !defined(RLGRU_CELL_SOURCE) || !defined(RLGRU_PPO_OPS)
#error "define RLGRU_CELL_SOURCE and RLGRU_PPO_OPS before including ppo_cell.h"
#endif

#include "kernel_cell.h"
#include "ppo_heads.h"

namespace rlgru_kernel {
namespace {

// A whole PPO minibatch for an actor's and a critic's core of this cell (rlgru.fast.update): per side, the core's
// layers forward, its heads and loss terms with their gradient (ppo_heads.h), the layers backward; the two sides
// share nothing, so each is one piece of work for pair_threads.h and a second core takes one for the whole step.
//
// Per side: `layers` holds (w_ih, w_hh, b_ih, b_hh) per layer and `states` each layer's initial states (h, and c for
// a two-state cell), `x` the first layer's input [T, B, I]. `index` (flat positions of the real steps in the T * B
// grid) is given when the minibatch is padded. Returns [loss, pg, value, entropy, kl, clip_fraction, log_prob,
// values], then the actor core's (dw_ih, dw_hh, db_ih, db_hh) per layer, the critic core's, and the heads'
// gradients in rlgru.fast.heads' order (actor MLP, critic MLP, action layer, value layer, log_std). A cell that
// sums its biases gets db_ih for both.

struct CoreSide {
  std::vector<at::Tensor> layers, states;
  at::Tensor x;
};

at::Tensor per_sample(const at::Tensor& grid_out, const std::optional<at::Tensor>& index) {
  const auto flat = grid_out.view({-1, grid_out.size(-1)});
  return index.has_value() ? flat.index_select(0, *index) : flat;
}

at::Tensor to_grid(const at::Tensor& rows, const std::optional<at::Tensor>& index, const at::Tensor& like) {
  if (!index.has_value()) return rows.view(like.sizes());
  auto grid = at::zeros({like.size(0) * like.size(1), rows.size(1)}, rows.options());
  grid.index_copy_(0, *index, rows);
  return grid.view(like.sizes());
}

std::optional<at::Tensor> second_state(const CoreSide& side, size_t layer) {
  return Traits::kStates > 1 ? std::optional<at::Tensor>(side.states[Traits::kStates * layer + 1]) : std::nullopt;
}

// The core's layers forward, `heads` (per-sample output -> its gradient), the layers backward: the weight gradients.
template <class HeadsFn>
std::vector<at::Tensor> core_side(const CoreSide& side, const std::optional<at::Tensor>& keep,
                                  const std::optional<at::Tensor>& index, const HeadsFn& heads) {
  const size_t n_layers = side.layers.size() / 4;
  std::vector<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>> runs;
  std::vector<at::Tensor> inputs{side.x};
  for (size_t l = 0; l < n_layers; ++l) {
    const auto& w = side.layers;
    runs.push_back(forward(inputs.back(), side.states[Traits::kStates * l], second_state(side, l), w[4 * l],
                           w[4 * l + 1], w[4 * l + 2], w[4 * l + 3], keep, true, 0));
    inputs.push_back(std::get<0>(runs.back()));
  }
  auto grad = to_grid(heads(per_sample(inputs.back(), index)), index, inputs.back());
  std::vector<at::Tensor> grads(4 * n_layers);
  for (size_t l = n_layers; l-- > 0;) {
    const auto& w = side.layers;
    const auto& [out, h_last, c_last, cs, saved] = runs[l];
    const auto second_seq = Traits::kStates > 1 ? std::optional<at::Tensor>(cs) : std::nullopt;
    auto [dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh] =
        backward(grad, std::nullopt, std::nullopt, inputs[l], side.states[Traits::kStates * l], second_state(side, l),
                 w[4 * l], w[4 * l + 1], out, second_seq, saved, keep, l > 0, false, true, 0);
    grads[4 * l] = dw_ih;
    grads[4 * l + 1] = dw_hh;
    grads[4 * l + 2] = db_ih;
    grads[4 * l + 3] = db_hh.defined() ? db_hh : db_ih;
    grad = dx;
  }
  return grads;
}

std::vector<at::Tensor> ppo_minibatch(at::TensorList actor_layers, at::TensorList actor_states,
                                      const at::Tensor& x_actor, at::TensorList critic_layers,
                                      at::TensorList critic_states, const at::Tensor& x_critic,
                                      const std::optional<at::Tensor>& keep_, const std::optional<at::Tensor>& index_,
                                      at::TensorList pi_weights,
                                      at::TensorList vf_weights, at::TensorList heads,
                                      const std::optional<at::Tensor>& log_std, const at::Tensor& actions,
                                      const at::Tensor& old_log_prob, const at::Tensor& advantages,
                                      const at::Tensor& returns, const at::Tensor& old_values, double clip,
                                      std::optional<double> clip_vf, double ent_coef, double vf_coef,
                                      at::IntArrayRef pi_act, at::IntArrayRef vf_act, int64_t kind,
                                      at::IntArrayRef dims) {
  const char* name = Traits::kName;
  TORCH_CHECK(actor_layers.size() % 4 == 0 && actor_layers.size() == critic_layers.size() && !actor_layers.empty(),
              name, " minibatch: four weights per layer, as many layers on both sides");
  TORCH_CHECK(actor_states.size() == Traits::kStates * actor_layers.size() / 4 &&
                  critic_states.size() == actor_states.size(),
              name, " minibatch: ", Traits::kStates, " initial state(s) per layer on both sides");
  TORCH_CHECK(x_actor.dim() == 3 && x_critic.sizes() == x_actor.sizes(), name,
              " minibatch: x is [T, B, I] on both sides");
  const CoreSide sides[2] = {{std::vector<at::Tensor>(actor_layers.begin(), actor_layers.end()),
                              std::vector<at::Tensor>(actor_states.begin(), actor_states.end()), x_actor},
                             {std::vector<at::Tensor>(critic_layers.begin(), critic_layers.end()),
                              std::vector<at::Tensor>(critic_states.begin(), critic_states.end()), x_critic}};
  const auto keep = contiguous_opt(keep_);
  const auto index = contiguous_opt(index_);
  const auto args = rlgru_heads::heads_args(pi_weights, vf_weights, heads, log_std, actions, old_log_prob, advantages,
                                            returns, old_values, clip, clip_vf, ent_coef, vf_coef, pi_act, vf_act,
                                            kind, dims, true, x_actor.scalar_type());
  rlgru_heads::ActorSide actor;
  rlgru_heads::CriticSide critic;
  std::vector<at::Tensor> core_grads[2];
  run_both(x_actor.size(0) * x_actor.size(1), [&](int64_t i) {
    if (i == 0) {
      core_grads[0] = core_side(sides[0], keep, index, [&](const at::Tensor& core_out) {
        actor = rlgru_heads::actor_side(core_out, args);
        return actor.grad_in;
      });
    } else {
      core_grads[1] = core_side(sides[1], keep, index, [&](const at::Tensor& core_out) {
        critic = rlgru_heads::critic_side(core_out, args);
        return critic.grad_in;
      });
    }
  });
  auto out = rlgru_heads::loss_outputs(actor, critic, args);
  out.insert(out.begin() + 8, core_grads[1].begin(), core_grads[1].end());
  out.insert(out.begin() + 8, core_grads[0].begin(), core_grads[0].end());
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// One rollout step of an actor's and a critic's core of this cell under the plain heads (rlgru.fast.act): both
// cores one step (the LSTM's through at::lstm_cell, as its core's own rollout step), the MLPs, the action
// distribution's draw and log-prob, the value and the next packed state in one call instead of some thirty small
// ops and module calls. The same ATen ops in the same order as the policy's
// PyTorch path, and the draw takes the same random numbers: torch.multinomial's one-sample path is argmax(p / q)
// with q ~ Exp(1) drawn in one exponential_ call, as here, so a seed gives the same actions either way.
//
// `state` [n_layers, B, S_a + S_c] packs each layer's actor states then critic states (h, and c for a two-state
// cell), already zeroed where episodes start; `x_actor`, `x_critic` are [B, I]. Returns [actions, values [B, 1],
// log_prob [B], next state like `state`]; categorical actions are int64 (one column per dim for several dims).

// One core's step through its layers: its last layer's output, each layer's next packed state into `next_states`.
at::Tensor one_step(const std::vector<at::Tensor>& w, const at::Tensor& state, int64_t offset, int64_t H, at::Tensor x,
                    std::vector<at::Tensor>& next_states) {
  for (size_t l = 0; l < next_states.size(); ++l) {
    const auto layer_state = state.select(0, static_cast<int64_t>(l));
    const auto h0 = layer_state.narrow(1, offset, H);
    if constexpr (Traits::kStates > 1) {
      // the LSTM core's own rollout step is torch.lstm_cell (cheaper than the kernel at T = 1): the same op here
      auto [h, c] = at::lstm_cell(x, {h0, layer_state.narrow(1, offset + H, H)}, w[4 * l], w[4 * l + 1],
                                  w[4 * l + 2], w[4 * l + 3]);
      next_states[l] = at::cat({h, c}, 1);
      x = h;
    } else {
      auto [out, h, c, cs, saved] = forward(x.unsqueeze(0), h0, std::nullopt, w[4 * l], w[4 * l + 1], w[4 * l + 2],
                                            w[4 * l + 3], std::nullopt, false, 0);
      next_states[l] = h;
      x = out.select(0, 0);
    }
  }
  return x;
}

std::vector<at::Tensor> act(at::TensorList actor_layers, at::TensorList critic_layers, const at::Tensor& x_actor,
                            const at::Tensor& x_critic, const at::Tensor& state, at::TensorList pi_weights,
                            at::TensorList vf_weights, at::TensorList heads, const std::optional<at::Tensor>& log_std,
                            at::IntArrayRef pi_act, at::IntArrayRef vf_act, int64_t kind, at::IntArrayRef dims,
                            bool deterministic) {
  const char* name = Traits::kName;
  TORCH_CHECK(actor_layers.size() % 4 == 0 && !actor_layers.empty() && actor_layers.size() == critic_layers.size(),
              name, " act: four weights per layer, as many layers on both sides");
  TORCH_CHECK(heads.size() == 4, name, " act: four head tensors");
  const int64_t n_layers = static_cast<int64_t>(actor_layers.size() / 4);
  const int64_t H = actor_layers[1].size(1);
  TORCH_CHECK(state.dim() == 3 && state.size(0) == n_layers && state.size(2) == 2 * Traits::kStates * H, name,
              " act: state must be [n_layers, B, 2 * ", Traits::kStates, " * hidden]");
  std::vector<at::Tensor> next_a(n_layers), next_c(n_layers);
  const std::vector<at::Tensor> wa(actor_layers.begin(), actor_layers.end()), wc(critic_layers.begin(),
                                                                                critic_layers.end());
  const auto core_pi = one_step(wa, state, 0, H, x_actor, next_a);
  const auto core_vf = one_step(wc, state, Traits::kStates * H, H, x_critic, next_c);
  std::vector<at::Tensor> layer_states;
  for (int64_t l = 0; l < n_layers; ++l) layer_states.push_back(at::cat({next_a[l], next_c[l]}, 1));
  const auto next_state = at::stack(layer_states, 0);

  const std::vector<at::Tensor> pw(pi_weights.begin(), pi_weights.end()), vw(vf_weights.begin(), vf_weights.end());
  const auto latent_pi = rlgru_heads::mlp_forward(core_pi, pw, pi_act).back();
  const auto latent_vf = rlgru_heads::mlp_forward(core_vf, vw, vf_act).back();
  const auto params = at::addmm(heads[1], latent_pi, heads[0].t());
  const auto values = at::addmm(heads[3], latent_vf, heads[2].t());
  at::Tensor actions, log_prob;
  if (kind == rlgru_heads::kGaussian) {
    TORCH_CHECK(log_std.has_value(), name, " act: a Gaussian needs log_std");
    const auto std_ = at::ones_like(params) * log_std->exp();
    actions = deterministic ? params : params + at::empty_like(params).normal_() * std_;
    const auto per_dim = (actions - params).pow(2).neg() / (std_.pow(2) * 2) - std_.log() -
                         std::log(std::sqrt(2 * rlgru_heads::kPi));
    log_prob = per_dim.dim() > 1 ? per_dim.sum(1) : per_dim.sum();
  } else {
    TORCH_CHECK(!dims.empty(), name, " act: a categorical needs its action dims");
    std::vector<at::Tensor> drawn, log_probs;
    for (const auto& logits : params.split_with_sizes(dims, 1)) {
      const auto log_p = at::log_softmax(logits, -1);
      const auto probs = at::softmax(log_p, -1);
      const auto a = deterministic ? at::argmax(probs, 1)
                                   : at::argmax(probs / at::empty_like(probs).exponential_(1), -1);
      log_probs.push_back(log_p.gather(-1, a.unsqueeze(-1)).squeeze(-1));
      drawn.push_back(a);
    }
    if (drawn.size() == 1) {
      actions = drawn[0];
      log_prob = log_probs[0];
    } else {
      actions = at::stack(drawn, 1);
      log_prob = at::stack(log_probs, 1).sum(1);
    }
  }
  return {actions, values, log_prob, next_state};
}

void register_ppo_ops(torch::Library& m) {
  m.def(
      "ppo_minibatch(Tensor[] actor_layers, Tensor[] actor_states, Tensor x_actor, Tensor[] critic_layers, "
      "Tensor[] critic_states, Tensor x_critic, Tensor? keep, Tensor? index, Tensor[] pi_weights, Tensor[] vf_weights, "
      "Tensor[] heads, Tensor? log_std, Tensor actions, Tensor old_log_prob, Tensor advantages, Tensor returns, "
      "Tensor old_values, float clip, float? clip_vf, float ent_coef, float vf_coef, int[] pi_act, int[] vf_act, "
      "int kind, int[] dims) -> Tensor[]",
      &ppo_minibatch);
  m.def(
      "act(Tensor[] actor_layers, Tensor[] critic_layers, Tensor x_actor, Tensor x_critic, Tensor state, "
      "Tensor[] pi_weights, Tensor[] vf_weights, Tensor[] heads, Tensor? log_std, int[] pi_act, int[] vf_act, "
      "int kind, int[] dims, bool deterministic) -> Tensor[]",
      &act);
  m.def("isa() -> str", &isa_name);
  m.def("release_cached_memory() -> ()", &release_cached_memory);
}

}  // namespace
}  // namespace rlgru_kernel

RLGRU_TORCH_LIBRARY(RLGRU_PPO_OPS, m) { rlgru_kernel::register_ppo_ops(m); }
