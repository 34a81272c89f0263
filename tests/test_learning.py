"""Learning with memory: a GRU agent solves a recall task that no memoryless agent can.

A memoryless policy sees the same query whatever the cue was, so its expected return is at most 0 (optimal: 1).
Small budgets and fixed seeds keep this to seconds.
"""

from __future__ import annotations

import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from rlgru import RecurrentPPO
from tests.helpers import CueRecallEnv

HYPERPARAMETERS = {"n_steps": 32, "batch_size": 128, "n_epochs": 8, "learning_rate": 3e-3, "gamma": 0.9,
                   "ent_coef": 0.01}
BUDGET = 12_000


def recall_env(seed: int) -> object:
    return make_vec_env(CueRecallEnv, n_envs=8, seed=seed, env_kwargs={"delay": 4})


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["MlpGruPolicy", "MlpLstmPolicy", "MlpMinGruPolicy", "MlpLruPolicy"])
def test_recurrent_agent_solves_cue_recall(policy: str) -> None:
    th.manual_seed(0)
    model = RecurrentPPO(policy, recall_env(0), seed=0, policy_kwargs={"hidden_size": 32, "net_arch": [32]},
                         **HYPERPARAMETERS)
    model.learn(BUDGET)
    mean_return, _ = evaluate_policy(model, recall_env(100), n_eval_episodes=200, deterministic=True)
    assert mean_return > 0.8, f"{policy} reached {mean_return:.2f}; memoryless ceiling is 0"


@pytest.mark.slow
def test_memoryless_ppo_cannot_solve_cue_recall() -> None:
    model = PPO("MlpPolicy", recall_env(0), seed=0, policy_kwargs={"net_arch": [32]}, **HYPERPARAMETERS)
    model.learn(BUDGET)
    mean_return, _ = evaluate_policy(model, recall_env(100), n_eval_episodes=200, deterministic=True)
    assert mean_return < 0.3, f"a memoryless agent cannot beat 0 in expectation, got {mean_return:.2f}"
