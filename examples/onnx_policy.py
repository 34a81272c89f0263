"""Play an rlgru task with an exported policy, using only numpy, gymnasium and onnxruntime: no torch, no SB3.

    rlgru export runs/quickstart-s0-*/ --out policy.onnx
    python examples/onnx_policy.py policy.onnx --episodes 5

Everything the loop needs is in the file: its metadata names the env and the inputs' dtypes and the state's shape;
VecNormalize statistics and image handling are inside the graph. The memory is the ``state`` array you carry from
one step to the next, with ``episode_start`` set to 1 where an episode begins (the graph zeroes the state there).
The tasks come from the repository's ``envs/`` package, which needs only gymnasium and numpy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnxruntime as ort

try:
    import envs  # noqa: F401 - registers the rlgru/ tasks with gymnasium
except ModuleNotFoundError:  # run from a checkout without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import envs  # noqa: F401


def play(path: str, env_id: str | None, episodes: int, seed: int) -> list[dict]:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["rlgru"])
    env_meta = meta.get("env") or {}
    env = gym.make(env_id or env_meta["id"], **({} if env_id else env_meta.get("kwargs", {})))
    for wrapper in [] if env_id else env_meta.get("wrappers", []):  # a wrapper from envs.wrappers or gymnasium
        module = envs.wrappers if hasattr(envs.wrappers, wrapper["name"]) else gym.wrappers
        env = getattr(module, wrapper["name"])(env, **wrapper["kwargs"])
    obs_inputs = [item for item in meta["inputs"] if item["name"].startswith("obs")]
    n_layers, _, state_size = meta["state"]["shape"]
    state = np.zeros((n_layers, 1, state_size), np.float32)  # a batch of one env
    rule = meta["hidden_reset"]  # when the model was trained to start a fresh memory: episode, trial or never
    results = []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        fresh = episode == 0 or rule == "episode" or (rule == "trial" and info.get("trial_start", False))
        episode_start = np.full(1, float(fresh), np.float32)  # 1: the graph zeroes the state first
        actions, total, done = [], 0.0, False
        while not done:
            feed = {"state": state, "episode_start": episode_start}
            for item in obs_inputs:  # "obs", or "obs.<key>" for each part of a Dict observation
                part = obs if item["name"] == "obs" else obs[item["name"].removeprefix("obs.")]
                feed[item["name"]] = np.asarray(part, dtype=item["dtype"])[None]  # a batch of one
            action, state = session.run(["action", "next_state"], feed)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            episode_start[:] = 0.0
            actions.append(action[0].tolist())
            total += float(reward)
            done = terminated or truncated
        results.append({"return": total, "length": len(actions), "actions": actions})
    env.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy", help="an .onnx file written by rlgru export")
    parser.add_argument("--env", help="gymnasium id to play (default: the one in the file's metadata)")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    parser.add_argument("--json", action="store_true", help="print every episode's actions and return as JSON")
    args = parser.parse_args()
    results = play(args.policy, args.env, args.episodes, args.seed)
    if args.json:
        print(json.dumps(results))
    else:
        for index, result in enumerate(results):
            print(f"episode {index}: return {result['return']:.3f} in {result['length']} steps")


if __name__ == "__main__":
    main()
