"""Files saved by the release before the module move (commit 00c8150) still load, predict, evaluate, resume and
export, and seeded training still gives that release's parameters.

The fixtures in ``tests/fixtures/old_release`` were written by that release (``make_fixtures.py`` there says how).
Only public entry points are used, ``from rlgru import RecurrentPPO`` and the ``rlgru`` command (its console-script
entry point), so these tests hold whatever rlgru's modules are called.

Floating-point results are only bit-identical on the kind of machine that wrote the fixtures: ``manifest.json``
keeps its key (torch version, CPU model, the SIMD ISA the fused kernels picked), and everything runs on one torch
thread. On another kind of machine (AVX-512 instead of AVX2 code in the kernels, MKL's Intel or AMD paths, another
torch) the same code rounds differently, and the comparisons of floats use the tolerances below instead; each test
says why its tolerance is enough, and a warning says that they were used. ``RLGRU_OLD_RELEASE_OTHER_MACHINE=1``
takes those branches on the fixtures' own machine too (to try them).

The zips name rlgru's classes by their module paths of that release (``rlgru.policies:MlpGruPolicy`` and the like,
in the pickled ``policy_class``), which is what a move of modules can break.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import warnings
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env

from rlgru import RecurrentPPO

FIXTURES = Path(__file__).parent / "fixtures" / "old_release"
MANIFEST: dict[str, Any] = json.loads((FIXTURES / "manifest.json").read_text())
RUN = FIXTURES / "run"

#: same machine kind: predictions as recorded up to this (the brief's "~1e-6"; in practice they are equal)
SAME_MACHINE_ATOL = 1e-6
#: another machine kind: values, states, action probabilities and Box actions of the recorded predictions. Rounding
#: differences stay far below it: with every fast path off (PyTorch cores instead of the fused kernels, which round
#: differently) the recordings are reproduced to 1.2e-7
OTHER_MACHINE_ATOL = 1e-4
#: another machine kind: parameters after seeded training (see test_seeded_training_gives_the_old_release_parameters)
OTHER_MACHINE_PARAM_ATOL = 1e-4


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The fixtures were written on one torch thread: results that do not depend on the machine's core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def rlgru_command() -> Callable[[list[str]], int]:
    """The ``rlgru`` command's main function, found as the console script finds it (returns the exit status)."""
    (script,) = entry_points(group="console_scripts", name="rlgru")
    return script.load()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@pytest.fixture(scope="module")
def machine() -> dict[str, str]:
    """This machine's key, as make_fixtures.py computes it. A new GRU model acts once first, which loads the fused
    GRU kernel where it can be (an old file could fail to load, and that is for the tests to report)."""
    fresh = RecurrentPPO("MlpGruPolicy", "rlgru/TMaze-Easy-v0", n_steps=2, batch_size=2, device="cpu",
                         policy_kwargs={"hidden_size": 4, "net_arch": [4]})
    fresh.predict(fresh.observation_space.sample()[None], deterministic=True)
    try:
        isa = str(torch.ops.rlgru_fused_gru.isa())
    except (AttributeError, RuntimeError):  # no kernel (not built, or RLGRU_DISABLE_FUSED_GRU=1)
        isa = "unavailable"
    return {"torch": torch.__version__, "cpu": cpu_model(), "kernel_isa": isa}


@pytest.fixture(scope="module")
def same_machine(machine: dict[str, str]) -> bool:
    """Whether the fixtures' numbers must be reproduced bit for bit here; if not, a warning says so (the
    comparisons then use tolerances, and would not see a change of rounding)."""
    forced_other = os.environ.get("RLGRU_OLD_RELEASE_OTHER_MACHINE", "") not in ("", "0")
    same = machine == MANIFEST["machine"] and not forced_other
    if not same:
        warnings.warn(f"old-release fixtures compared with tolerances: this machine is {machine}, they were made on "
                      f"{MANIFEST['machine']}", UserWarning, stacklevel=2)
    return same


@pytest.fixture
def run_copy(tmp_path: Path) -> Path:
    """A copy of the old run directory (commands write into a run; the fixture stays as the old release left it)."""
    return Path(shutil.copytree(RUN, tmp_path / "run"))


# ------------------------------------------------------------------------------------------------ model zips
def replay(model: RecurrentPPO, record: Any) -> dict[str, np.ndarray]:
    """What ``make_fixtures.record_predictions`` recorded, computed again by ``model`` on the recorded inputs."""
    policy = model.policy
    obs_keys = [key for key in record.files if key.startswith("obs.")]
    state = None
    rows: dict[str, list[np.ndarray]] = {"actions": [], "values": [], "states": [], "scores": []}
    for t, starts in enumerate(record["episode_start"]):
        obs = {key[4:]: record[key][t] for key in obs_keys} if obs_keys else record["obs"][t]
        actions, next_state = model.predict(obs, state, starts, deterministic=True)
        with torch.no_grad():
            obs_tensor = policy.obs_to_tensor(obs)[0]
            state_tensor = torch.as_tensor(np.zeros_like(next_state) if state is None else state)
            start_tensor = torch.as_tensor(starts.astype(np.float32))
            values = policy.predict_values(obs_tensor, state_tensor, start_tensor).flatten().numpy()
            distribution, _ = policy.get_distribution(obs_tensor, state_tensor, start_tensor)
        inner = distribution.distribution
        if isinstance(inner, list):  # MultiDiscrete: one Categorical per part
            scores = torch.cat([part.probs for part in inner], dim=1).numpy()
        else:
            scores = inner.probs.numpy() if isinstance(inner, torch.distributions.Categorical) else inner.mean.numpy()
        for key, value in (("actions", actions), ("values", values), ("states", next_state), ("scores", scores)):
            rows[key].append(value)
        state = next_state
    return {key: np.stack(value) for key, value in rows.items()}


def likeliest(scores: np.ndarray, action_space: spaces.Space, tolerance: float) -> list[np.ndarray]:
    """Per action part (one, or one per MultiDiscrete entry): ``[T, n_envs, n]`` masks of the actions whose recorded
    probability is within ``tolerance`` of the likeliest one's: what another machine's rounding may pick."""
    sizes = list(action_space.nvec) if isinstance(action_space, spaces.MultiDiscrete) else [action_space.n]
    parts = np.split(scores, np.cumsum(sizes)[:-1], axis=-1)
    return [part >= part.max(axis=-1, keepdims=True) - tolerance for part in parts]


@pytest.mark.parametrize("name", list(MANIFEST["models"]))
def test_old_model_replays_its_recorded_predictions(name: str, same_machine: bool) -> None:
    """An old zip loads and its deterministic ``predict`` gives the recorded actions and next states, with the
    recorded values and action probabilities (or Gaussian means), over two envs with episode starts mid-sequence.

    On another machine kind the floats agree to ``OTHER_MACHINE_ATOL``. A Discrete action must still match
    except where the recorded two likeliest actions are within that tolerance of each other: these policies are
    barely trained and some steps are near-ties (the LRU model has one at 3e-7), which a different rounding may
    break either way; there the action taken must be one of the tied ones.
    """
    model = RecurrentPPO.load(FIXTURES / "models" / f"{name}.zip", device="cpu")
    assert model.num_timesteps == MANIFEST["model_training"]["total_timesteps"]
    with np.load(FIXTURES / "models" / f"{name}.npz") as record:
        got = replay(model, record)
        want = {key: record[key] for key in got}
        first_obs = record["obs"][0] if "obs" in record.files else None
    atol = SAME_MACHINE_ATOL if same_machine else OTHER_MACHINE_ATOL
    for key in ("values", "states", "scores"):
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=atol, err_msg=f"{name}: {key}")
    if same_machine:
        np.testing.assert_array_equal(got["actions"], want["actions"], err_msg=f"{name}: actions")
    elif isinstance(model.action_space, spaces.Box):
        np.testing.assert_allclose(got["actions"], want["actions"], rtol=0, atol=atol, err_msg=f"{name}: actions")
    else:
        taken = got["actions"].reshape(*want["scores"].shape[:2], -1)
        for part, allowed in enumerate(likeliest(want["scores"], model.action_space, atol)):
            ok = np.take_along_axis(allowed, taken[..., part : part + 1], axis=-1)
            assert ok.all(), f"{name}: an action that was not (near-)likeliest at steps {np.argwhere(~ok[..., 0])}"

    if isinstance(getattr(model, "nested_observation_space", None), spaces.Tuple):
        # the Tuple model also takes the env's own (unflattened) observations, as it did when saved
        nested = spaces.unflatten(model.nested_observation_space, first_obs[0])
        from_nested, state = model.predict(nested, deterministic=True)
        from_flat, flat_state = model.predict(first_obs[:1], deterministic=True)
        assert int(from_nested) == int(from_flat[0]) and np.array_equal(state, flat_state)


# --------------------------------------------------------------------------------------------- run directory
def json_output(text: str) -> dict[str, Any]:
    return json.loads(text[text.index("{") :])


def test_old_run_evaluates_as_the_old_release_did(run_copy: Path, rlgru_command: Callable,
                                                  capsys: pytest.CaptureFixture[str], same_machine: bool) -> None:
    """``rlgru eval --deterministic`` of the old run (its VecNormalize statistics, its seed + 10000) plays the
    episodes the old release's final evaluation played, with the same returns on the same machine kind."""
    assert rlgru_command(["eval", str(run_copy), "--deterministic", "--json"]) == 0
    result = json_output(capsys.readouterr().out)
    saved = json.loads((RUN / "eval.json").read_text())
    assert result["timesteps"] == saved["timesteps"] == MANIFEST["run_config"]["training"]["total_timesteps"]
    assert result["episodes"] == len(result["returns"]) == saved["episodes"]
    if same_machine:  # elsewhere a near-tied action may flip and end an episode differently
        assert (result["returns"], result["lengths"]) == (saved["returns"], saved["lengths"])


def test_old_run_resumes_to_a_larger_budget(run_copy: Path, rlgru_command: Callable, same_machine: bool) -> None:
    """``rlgru train --resume`` continues the old run from its last checkpoint (weights, Adam moments, VecNormalize
    statistics) to a larger ``training.total_timesteps``, and lands on the parameters the old release's own resume
    reached: bit for bit on the same machine kind, else within ``OTHER_MACHINE_PARAM_ATOL`` (see
    ``test_seeded_training_gives_the_old_release_parameters``)."""
    steps = MANIFEST["resume_timesteps"]
    status = rlgru_command(["train", str(run_copy / "config.yaml"), "--run-dir", str(run_copy), "--resume",
                            "--no-progress", "--set", f"training.total_timesteps={steps}"])
    assert status == 0
    model = RecurrentPPO.load(run_copy / "model.zip", device="cpu")
    assert model.num_timesteps == steps
    freq = MANIFEST["run_config"]["training"]["checkpoint_freq"]
    assert sorted(p.name for p in (run_copy / "checkpoints").glob("model_*_steps.zip")) == sorted(
        f"model_{n}_steps.zip" for n in range(freq, steps + 1, freq))
    assert json.loads((run_copy / "eval.json").read_text())["timesteps"] == steps
    with np.load(FIXTURES / "run_resumed.npz") as reference:
        assert_parameters(model, reference, exact=same_machine)


def test_old_run_exports_to_torchscript(run_copy: Path, rlgru_command: Callable, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``rlgru export`` writes the old run's policy as TorchScript (no extra dependency), and its own check passes:
    the written file, loaded and run on the run's env, acts as ``predict`` does."""
    out = tmp_path / "policy.pt"
    assert rlgru_command(["export", str(run_copy), "--format", "torchscript", "--out", str(out),
                          "--check-steps", "16", "--json"]) == 0
    result = json_output(capsys.readouterr().out)
    assert result["format"] == "torchscript" and Path(result["path"]) == out
    assert out.is_file() and Path(result["metadata"]).is_file()
    assert "actions equal" in result["check"]


# -------------------------------------------------------------------------------------- seeded training
def assert_parameters(model: RecurrentPPO, reference: Any, *, exact: bool) -> None:
    params = {key: value.detach().cpu() for key, value in model.policy.state_dict().items()}
    assert sorted(params) == sorted(reference.files), "the policy's parameter names changed"
    for key, value in params.items():
        expected = torch.from_numpy(reference[key])
        if exact:
            assert torch.equal(value, expected), f"{key}: max |diff| {(value - expected).abs().max().item():.3g}"
        else:
            torch.testing.assert_close(value, expected, rtol=0, atol=OTHER_MACHINE_PARAM_ATOL,
                                       msg=lambda detail, key=key: f"{key}: {detail}")


@pytest.mark.parametrize("kind", ["fast", "plain"])
@pytest.mark.parametrize("core", list(MANIFEST["param_runs"]))
def test_seeded_training_gives_the_old_release_parameters(core: str, kind: str, machine: dict[str, str],
                                                          same_machine: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``learn`` with the reference's seed and settings gives the old release's parameters: with every fast path on
    (the default) and with every one off (the two differ by design: without the fused kernels a core cannot reset
    mid-sequence, so the buffer cuts sequences at resets and the minibatches differ).

    Same machine kind: ``torch.equal`` on every tensor. Another kind: within ``OTHER_MACHINE_PARAM_ATOL`` (1e-4).
    Rounding differences start near 1e-7 and this short training hardly amplifies them: scaling every initial
    parameter by (1 + 1e-6 noise), ten times float32 rounding, moved the final parameters by at most 2.2e-6 (GRU and
    LSTM, fast and plain, five draws each). The tolerance still sees a change in the training: 12 Adam steps at lr
    3e-4 move parameters by ~3.5e-3 (asserted below to be at least 10x the tolerance), and the two paths, whose
    minibatches differ, end 1.7e-3 (GRU) and 7.7e-4 (LSTM) apart. A sampled Discrete action flipped by rounding
    would break it, but that needs a uniform draw within ~1e-7 of a probability boundary.
    """
    if kind == "fast" and not same_machine and machine["kernel_isa"] == "unavailable":
        pytest.skip("the fused kernels are not available here, and the fast-path reference was made with them")
    for switch in MANIFEST["fast_path_switches"]:
        monkeypatch.setenv(switch, "1" if kind == "plain" else "0")
    run, settings = MANIFEST["param_runs"][core], MANIFEST["param_training"]
    env = make_vec_env(run["env"], n_envs=settings["n_envs"], seed=settings["seed"], env_kwargs=run["env_kwargs"])
    model = RecurrentPPO(run["policy"], env, n_steps=settings["n_steps"], batch_size=settings["batch_size"],
                         n_epochs=settings["n_epochs"], seed=settings["seed"], policy_kwargs=settings["policy_kwargs"],
                         device="cpu")
    initial = {key: value.clone() for key, value in model.policy.state_dict().items()}
    model.learn(settings["iterations"] * settings["n_envs"] * settings["n_steps"])
    moved = max((value - initial[key]).abs().max().item() for key, value in model.policy.state_dict().items())
    assert moved >= 10 * OTHER_MACHINE_PARAM_ATOL, f"training moved parameters by only {moved:.3g}"
    # One deliberate exception: a GRU without its kernel now trains through rlgru.cores.gru_fallback (a PyTorch loop
    # with a hand-written backward, at least as fast as the LSTM's fallback) instead of nn.GRU. It computes the same
    # function, tested against nn.GRU (tests/test_gru_fallback.py), with other rounding: 6e-8 here, so that case is
    # held to the other-machine tolerance.
    new_rounding = core == "gru" and kind == "plain"
    with np.load(FIXTURES / "params" / f"{core}-{kind}.npz") as reference:
        assert_parameters(model, reference, exact=same_machine and not new_rounding)
