"""The exported computation: ``(obs, state, episode_start) -> (action, next_state[, value])`` for one step.

``ExportedPolicy`` is a separate module that holds the trained policy's own submodules (features extractors, MLP
heads) and an exportable step of each core, so exporting neither copies weights nor changes the policy class. It
does what ``RecurrentActorCriticPolicy.predict`` does: zero the state of envs whose episode starts, run both cores
(the critic's state is part of the state even when no value is asked for) and pick the action.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from rlgru.algorithm.policies import RecurrentActorCriticPolicy
from rlgru.export.actions import ActionHead
from rlgru.export.core_steps import core_step
from rlgru.export.errors import ExportError
from rlgru.export.observations import ObservationPipeline

#: operator namespaces a traced graph may use: anything else (``rlgru_fused_gru::forward``) needs a library the
#: deployed file would not have
PORTABLE_NAMESPACES = ("aten", "prim")
#: torch deprecates TorchScript (``torch.jit.*``) in favour of torch.export; its files still load with
#: ``torch.jit.load`` and libtorch's ``torch::jit::load``, but ONNX is the format to prefer for new deployments
DEPRECATION = r"`torch\.jit\.\w+` is deprecated"
#: batch size of the second set of inputs a trace must reproduce (the trace itself runs at batch 2)
PROBE_BATCH = 5


class ExportedPolicy(nn.Module):
    """``forward(*observations, state, episode_start)``: one tensor per ``observations.inputs`` entry, ``state``
    ``[n_layers, B, state_size]`` float32, ``episode_start`` ``[B]`` float32 (1 zeroes that env's state first).
    Returns the action, the next state and, with ``value=True``, the value ``[B]``."""

    def __init__(
        self, policy: RecurrentActorCriticPolicy, observations: ObservationPipeline, *, sample: bool, value: bool
    ) -> None:
        super().__init__()
        self.observations = observations
        self.pi_extractor = policy.pi_features_extractor
        self.vf_extractor = None if policy.share_features_extractor else policy.vf_features_extractor
        self.actor_step = core_step(policy.actor_core)
        self.critic_step = None if policy.critic_core is None else core_step(policy.critic_core)
        self.critic_projection = policy.critic_projection
        self.actor_state_size = policy.actor_core.state_size
        self.mlp_extractor = policy.mlp_extractor
        self.actions = ActionHead(policy, sample)
        self.value_net = policy.value_net if value else None
        self.n_layers = policy.n_layers
        self.state_size = policy.state_size
        cores = [policy.actor_core] + ([] if policy.critic_core is None else [policy.critic_core])
        self.reads_state = any(core.remembers for core in cores)
        self.eval()

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        *obs, state, episode_start = inputs
        state = state * (1.0 - episode_start).view(1, -1, 1)
        x = self.observations(*obs)
        pi_features = self.pi_extractor(x)
        vf_features = pi_features if self.vf_extractor is None else self.vf_extractor(x)
        if self.critic_step is None:
            core_pi, next_state = self.actor_step(pi_features, state)
        else:
            core_pi, next_actor = self.actor_step(pi_features, state[..., : self.actor_state_size])
            core_vf, next_critic = self.critic_step(vf_features, state[..., self.actor_state_size :])
            next_state = torch.cat((next_actor, next_critic), dim=-1)
        if not self.reads_state:
            # a memoryless core never reads its state, and ONNX drops inputs nothing reads: this keeps ``state`` and
            # ``episode_start`` inputs of the file, so every exported policy is fed the same way
            next_state = next_state + 0.0 * state
        action = self.actions(self.mlp_extractor.forward_actor(core_pi))
        if self.value_net is None:
            return action, next_state
        if self.critic_step is None:
            core_vf = core_pi if self.critic_projection is None else self.critic_projection(vf_features)
        value = self.value_net(self.mlp_extractor.forward_critic(core_vf)).squeeze(-1)
        return action, next_state, value

    @property
    def input_names(self) -> list[str]:
        return [*(item.name for item in self.observations.inputs), "state", "episode_start"]

    @property
    def output_names(self) -> list[str]:
        return ["action", "next_state", *(["value"] if self.value_net is not None else [])]

    def example_inputs(self, batch_size: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Inputs to trace with: observations from the input spaces, a random state, mixed episode starts."""
        generator = torch.Generator().manual_seed(seed)
        state = torch.randn(self.n_layers, batch_size, self.state_size, generator=generator)
        starts = ((torch.arange(batch_size) + seed) % 2 == 0).float()
        return (*self.observations.example(batch_size, seed), state, starts)


def trace(module: ExportedPolicy, inputs: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    """``torch.jit.trace``, refusing graphs a deployed runtime could not run (compiled operators, Python autograd
    Functions) and graphs that do not reproduce the module at another batch size and other values (a Python branch
    on a tensor's size or value, frozen by the trace)."""
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        # shape checks warn too (``x.shape[-1] != size``), so warnings are only the hint when the probe fails
        warnings.simplefilter("always", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=DEPRECATION)
        try:
            traced = torch.jit.trace(module, inputs, check_trace=False)
        except Exception as error:  # noqa: BLE001 - a module that cannot be traced is what the user must hear about
            raise ExportError(f"the policy cannot be traced ({_first_line(error)})") from None
    _check_operators(traced)
    hints = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    _check_generalizes(module, traced, hints)
    return traced


def _check_operators(traced: torch.jit.ScriptModule) -> None:
    nodes = list(traced.inlined_graph.nodes())
    python = sorted({node.pyname() for node in nodes if node.kind() == "prim::PythonOp"})
    if python:
        raise ExportError(
            f"the traced policy calls Python code ({', '.join(python)}: an autograd.Function), which no "
            "exported file can carry; give its core a plain-op step with rlgru.export.register_step"
        )
    foreign = sorted({node.kind() for node in nodes if node.kind().split("::")[0] not in PORTABLE_NAMESPACES})
    if foreign:
        raise ExportError(
            f"the traced policy calls {', '.join(foreign)}, a compiled operator no exported file can "
            "carry; give its core a pure-PyTorch step with rlgru.export.register_step"
        )


def _check_generalizes(module: ExportedPolicy, traced: torch.jit.ScriptModule, hints: list) -> None:
    probe = module.example_inputs(PROBE_BATCH, seed=1)
    hint = "" if not hints else f"; the tracer warned at {hints[0].filename}:{hints[0].lineno}"
    with torch.no_grad():
        expected = module(*probe)
        try:
            got = traced(*probe)
        except Exception as error:  # noqa: BLE001 - reported as the mismatch it is
            raise ExportError(
                f"the traced policy fails at batch size {PROBE_BATCH} ({_first_line(error)}): its code "
                f"branches on tensor sizes or values{hint}"
            ) from None
    for index, (name, want, have) in enumerate(zip(module.output_names, expected, got, strict=True)):
        if index == 0 and module.actions.sample:
            continue  # sampled actions differ from run to run
        same = want.shape == have.shape and (
            torch.equal(want, have) if not want.is_floating_point() else torch.allclose(want, have, atol=1e-5)
        )
        if not same:
            raise ExportError(
                f"the traced policy's {name} differs from the policy's at batch size {PROBE_BATCH}: "
                f"its code branches on tensor sizes or values{hint}"
            )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


__all__ = ["DEPRECATION", "PORTABLE_NAMESPACES", "PROBE_BATCH", "ExportedPolicy", "trace"]
