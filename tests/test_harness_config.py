"""Config schema: defaults, YAML quirks, --set overrides, schedules, and error messages that name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlgru.harness.agent import policy_kwargs, policy_name, to_schedule
from rlgru.harness.config import (
    RunConfig,
    apply_override,
    config_to_dict,
    differing_keys,
    dump_config,
    load_config,
    validate_config,
)
from rlgru.harness.errors import HarnessError

MINIMAL = {"env": {"id": "rlgru/TMaze-Easy-v0"}, "training": {"total_timesteps": 1000}}


def write(tmp_path: Path, data: object, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def error_of(data: dict) -> str:
    with pytest.raises(HarnessError) as caught:
        validate_config(data, where="run.yaml")
    return str(caught.value)


def test_minimal_config_gets_library_defaults() -> None:
    config = validate_config(MINIMAL, where="x")
    assert config.seed == 0
    assert config.env.n_envs == 8 and config.env.vec_env == "dummy" and config.env.normalize is None
    assert config.algorithm.n_steps == 128 and config.algorithm.learning_rate == 3e-4
    assert config.policy.core == "gru" and config.policy.hidden_size == 256 and config.policy.hidden_reset == "episode"
    assert config.evaluation.episodes == 100 and config.evaluation.deterministic


def test_yaml_reads_exponent_floats_and_ints(tmp_path: Path) -> None:
    text = ("env: {id: CartPole-v1}\ntraining: {total_timesteps: 1e5}\n"
            "algorithm: {learning_rate: 3e-4, ent_coef: 1e-2}\n")
    config = load_config(write(tmp_path, text))
    assert config.training.total_timesteps == 100_000
    assert config.algorithm.learning_rate == pytest.approx(3e-4)
    assert config.algorithm.ent_coef == pytest.approx(0.01)


def test_overrides_parse_yaml_values_and_create_sections(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    config = load_config(path, [
        "algorithm.n_steps=64",
        "policy.net_arch=[64, 32]",
        "algorithm.learning_rate=lin_1e-3",
        "env.normalize.norm_reward=false",
        "policy.core=lstm",
        "seed=7",
    ])
    assert config.algorithm.n_steps == 64
    assert config.policy.net_arch == [64, 32]
    assert config.algorithm.learning_rate == "lin_0.001"
    assert config.env.normalize is not None and config.env.normalize.norm_reward is False
    assert config.env.normalize.norm_obs is True
    assert config.policy.core == "lstm" and config.seed == 7


@pytest.mark.parametrize("assignment", ["no_equals_sign", "=3", "a..b=1"])
def test_malformed_override_names_the_flag(assignment: str) -> None:
    with pytest.raises(HarnessError, match=r"^--set: expected key.path=value"):
        apply_override({}, assignment)


def test_linear_schedule_decays_to_zero() -> None:
    schedule = to_schedule(validate_config({**MINIMAL, "algorithm": {"learning_rate": "lin_1e-3"}}, "x")
                           .algorithm.learning_rate)
    assert schedule(1.0) == pytest.approx(1e-3)
    assert schedule(0.5) == pytest.approx(5e-4)
    assert schedule(0.0) == pytest.approx(0.0)
    assert to_schedule(0.2) == 0.2


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"algorithm": {"n_steps": "abc"}}, "run.yaml: algorithm.n_steps: Input should be a valid integer"),
        ({"algorithm": {"n_step": 64}}, "run.yaml: algorithm.n_step: unknown key (did you mean 'n_steps'?)"),
        ({"polcy": {}}, "polcy: unknown key (did you mean 'policy'?)"),
        ({"policy": {"core": "transformer"}}, "policy.core: unknown core 'transformer'; choose one of"),
        ({"algorithm": {"learning_rate": "fast"}}, "algorithm.learning_rate: expected a positive number or 'lin_"),
        ({"algorithm": {"learning_rate": -1}}, "algorithm.learning_rate: must be positive"),
        ({"algorithm": {"gamma": 1.5}}, "algorithm.gamma: Input should be less than or equal to 1"),
        ({"env": {"id": "CartPole-v1", "wrappers": [{"name": "X", "kwarg": {}}]}},
         "env.wrappers[0].kwarg: unknown key (did you mean 'kwargs'?)"),
        ({"env": {"id": "CartPole-v1", "normalize": {"norm_ob": True}}},
         "env.normalize.norm_ob: unknown key (did you mean 'norm_obs'?)"),
        ({"policy": {"net_arch": {"pi": [8], "qf": [8]}}}, "policy.net_arch.qf: unknown key"),
        ({"training": {}}, "training.total_timesteps: required key is missing"),
    ],
)
def test_errors_name_the_key_path(section: dict, expected: str) -> None:
    assert expected in error_of({**MINIMAL, **section})


def test_several_errors_make_one_message() -> None:
    message = error_of({**MINIMAL, "algorithm": {"n_steps": "x", "n_epochs": "y"}})
    assert message.startswith("run.yaml: invalid config:")
    assert "algorithm.n_steps" in message and "algorithm.n_epochs" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("env: [unclosed", "invalid YAML at line"),
        ("- just\n- a list\n", "expected a mapping of config sections"),
    ],
)
def test_file_errors_name_the_file(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(HarnessError) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path)) and expected in str(caught.value)


def test_wrapper_and_normalize_shorthands() -> None:
    config = validate_config({**MINIMAL, "env": {
        "id": "CartPole-v1",
        "wrappers": ["gymnasium.wrappers:FlattenObservation", {"MaskObservation": {"indices": [0, 2]}},
                     {"name": "FlickerObservation", "kwargs": {"p": 0.1}}],
        "normalize": True,
    }}, "x")
    assert [(w.name, w.kwargs) for w in config.env.wrappers] == [
        ("gymnasium.wrappers:FlattenObservation", {}), ("MaskObservation", {"indices": [0, 2]}),
        ("FlickerObservation", {"p": 0.1}),
    ]
    assert config.env.normalize is not None and config.env.normalize.clip_obs == 10.0
    assert validate_config({**MINIMAL, "env": {"id": "x", "normalize": False}}, "x").env.normalize is None


def test_dump_round_trips(tmp_path: Path) -> None:
    overrides = ["algorithm.clip_range=lin_0.2", "policy.net_arch={pi: [8], vf: [4]}"]
    config = load_config(write(tmp_path, MINIMAL), overrides)
    dump_config(config, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == config
    assert differing_keys(config_to_dict(config), config_to_dict(again)) == []
    changed = load_config(tmp_path / "config.yaml", ["seed=3", "policy.hidden_size=8"])
    assert differing_keys(config_to_dict(config), config_to_dict(changed)) == ["policy.hidden_size", "seed"]
    # how a run executes is not what it learns: a resume may change the thread count or verbosity
    training = config.training.model_copy(update={"torch_threads": 2, "verbose": 1})
    faster = config.model_copy(update={"training": training})
    assert differing_keys(config_to_dict(config), config_to_dict(faster)) == []


def test_policy_mapping() -> None:
    from gymnasium import spaces
    from torch import nn

    config = validate_config({**MINIMAL, "policy": {"core": "lstm", "activation": "relu", "net_arch": [16],
                                                    "hidden_size": 12, "n_layers": 2, "shared_core": True}}, "x")
    box = spaces.Box(0, 1, (3,))
    assert policy_name(config.policy, box) == "MlpPolicy"
    assert policy_name(config.policy, spaces.Box(0, 255, (40, 40, 3), dtype="uint8")) == "CnnPolicy"
    assert policy_name(config.policy, spaces.Dict({"a": box}), "Lstm") == "MultiInputLstmPolicy"
    kwargs = policy_kwargs(config.policy)
    assert kwargs["core"] == "lstm" and kwargs["core_kwargs"] == {}
    assert kwargs["activation_fn"] is nn.ReLU and kwargs["net_arch"] == [16]
    assert (kwargs["hidden_size"], kwargs["n_layers"], kwargs["shared_core"]) == (12, 2, True)


def test_schema_is_strict_everywhere() -> None:
    def models(model: type) -> set[type]:
        from rlgru.harness.config import _model_in

        found = {model}
        for field in model.model_fields.values():
            inner = _model_in(field.annotation)
            if inner is not None:
                found |= models(inner)
        return found

    for model in models(RunConfig):
        assert model.model_config.get("extra") == "forbid", model.__name__


def test_sb3_contrib_reference_builds_the_same_network_in_its_vocabulary() -> None:
    from stable_baselines3.common.env_util import make_vec_env

    from rlgru.harness.agent import build_agent, contrib_policy_kwargs

    config = validate_config({**MINIMAL, "algorithm": {"implementation": "sb3-contrib", "n_steps": 16,
                                                       "batch_size": 16},
                              "policy": {"core": "lstm", "hidden_size": 16, "net_arch": [8]}}, where="x")
    kwargs = contrib_policy_kwargs(config.policy)
    assert (kwargs["lstm_hidden_size"], kwargs["n_lstm_layers"], kwargs["enable_critic_lstm"]) == (16, 1, True)
    assert "hidden_size" not in kwargs and "critic_core" not in kwargs
    env = make_vec_env("rlgru/TMaze-Easy-v0", n_envs=2)
    try:
        agent = build_agent(config, env, None, where="x")
    finally:
        env.close()
    assert type(agent).__module__.startswith("sb3_contrib")
    assert agent.policy.lstm_actor.hidden_size == 16


@pytest.mark.parametrize(("policy", "fragment"), [({"core": "gru"}, "policy.core is 'gru'"),
                                                   ({"core": "lstm", "hidden_reset": "trial"}, "hidden_reset"),
                                                   ({"core": "lstm", "shared_core": True},
                                                    "critic_trains_core is True")])
def test_sb3_contrib_reference_must_be_a_plain_lstm(policy: dict, fragment: str) -> None:
    message = error_of({**MINIMAL, "algorithm": {"implementation": "sb3-contrib"}, "policy": policy})
    assert fragment in message


def test_configs_saved_before_the_wings_still_match_their_suite() -> None:
    """A run's config.yaml from before the package's wings names the POPGym adapter by its old module, and has no
    ``algorithm.fast_paths``: neither is a difference that should stop a sweep or ``--resume``."""
    from rlgru.harness.config import WrapperConfig, differing_keys

    old = {"env": {"wrappers": [{"name": "rlgru.popgym_wrappers:POPGymWrappers", "kwargs": {}}]}, "algorithm": {}}
    new = {"env": {"wrappers": [{"name": "rlgru.env_plumbing.popgym_wrappers:POPGymWrappers", "kwargs": {}}]},
           "algorithm": {"fast_paths": True}}
    assert differing_keys(old, new) == []
    other = {"env": {"wrappers": [{"name": "rlgru.env_plumbing.wrappers:Other", "kwargs": {}}]}, "algorithm": {}}
    assert differing_keys(old, other) == ["env.wrappers"]
    wrapper = WrapperConfig.model_validate({"name": "rlgru.suite_wrappers:ResetOptions"})
    assert wrapper.name == "rlgru.env_plumbing.suite_wrappers:ResetOptions"
