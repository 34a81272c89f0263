"""``rlgru eval --video``: play episodes with a trained agent and write them as a GIF (Pillow) or an MP4 (ffmpeg).

Frames are the env's own ``render()`` in ``rgb_array`` mode, one per step plus the first, with the recurrent state
carried as in evaluation. An env that cannot draw itself is refused in one line before anything is played.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from rlgru.algorithm.hidden_reset import hidden_resets_after_step
from rlgru.harness.config import EnvConfig
from rlgru.harness.env_factory import EnvSpec
from rlgru.harness.errors import HarnessError
from rlgru.runtime.files import TEMPORARY_MARK, atomic_open

VIDEO_INSTALL = "pip install 'rlgru[video]'"
#: suffix -> the modules that write it
WRITERS: dict[str, tuple[str, ...]] = {".gif": ("PIL",), ".mp4": ("imageio_ffmpeg",)}
#: frames per second when the env's metadata names none
DEFAULT_FPS = 10


def check_video_path(path: Path) -> None:
    """Refuse, before any episode is played, a path whose format is unknown or whose writer is not installed."""
    suffix = path.suffix.lower()
    if suffix not in WRITERS:
        raise HarnessError(f"{path}: give a .gif or .mp4 file name", where="--video")
    for module in WRITERS[suffix]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise HarnessError(
                f"writing {suffix} files needs the {module!r} package, which is not installed: {VIDEO_INSTALL}",
                where="--video",
            ) from None


def render_env_config(env: EnvConfig) -> EnvConfig:
    """``env`` drawing ``rgb_array`` frames; a ``HarnessError`` if its env cannot (checked on one env, here)."""
    rendering = env.model_copy(update={"env_kwargs": {**env.env_kwargs, "render_mode": "rgb_array"}, "n_envs": 1})
    spec = EnvSpec.from_config(rendering)
    try:
        probe = spec.make_base()
    except Exception as error:  # noqa: BLE001 - an env that takes no render_mode cannot render, which is the news
        raise _cannot_render(env.id, f"building it with render_mode='rgb_array' fails: {_first_line(error)}") from None
    try:
        modes = list(probe.metadata.get("render_modes", []))
        if "rgb_array" not in modes or probe.render_mode != "rgb_array":
            raise _cannot_render(env.id, f"its render modes are {modes or 'none'}")
        probe.reset(seed=0)
        frame = probe.render()
        if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[-1] in (3, 4)):
            raise _cannot_render(env.id, f"render() gave {type(frame).__name__}, not an H x W x 3 image")
    finally:
        probe.close()
    return rendering


def record_episodes(
    predict: Callable[..., tuple[np.ndarray, Any]],
    env: VecEnv,
    episodes: int,
    *,
    deterministic: bool,
    hidden_reset: str = "episode",
) -> list[np.ndarray]:
    """The frames of ``episodes`` episodes of a one-env vec env that renders ``rgb_array``, played by ``predict``
    (a model's), the state zeroed by the model's ``hidden_reset`` rule, as in evaluation."""
    if env.num_envs != 1:
        raise ValueError(f"record_episodes plays one env, got {env.num_envs}")
    observations = env.reset()
    frames = [_frame(env)]
    state = None
    starts = np.ones(1, dtype=bool)
    finished = 0
    while True:
        actions, state = predict(observations, state=state, episode_start=starts, deterministic=deterministic)
        observations, _, dones, infos = env.step(actions)
        starts = hidden_resets_after_step(hidden_reset, env, dones, infos)
        finished += int(dones[0])
        if finished == episodes:
            return frames
        # after a last step the vec env has reset already, so an episode's final frame is its next one's first
        frames.append(_frame(env))


def write_video(frames: list[np.ndarray], path: Path, fps: float) -> None:
    """``frames`` (H x W x 3 uint8) as a GIF or MP4 at ``path``, written atomically."""
    if not frames:
        raise ValueError("no frames to write")
    images = [np.ascontiguousarray(frame[..., :3], dtype=np.uint8) for frame in frames]
    if path.suffix.lower() == ".gif":
        from PIL import Image

        pictures = [Image.fromarray(image) for image in images]
        duration = max(20, round(1000 / fps))  # GIF delays are whole hundredths of a second; browsers floor 20 ms
        with atomic_open(path, "wb") as handle:
            pictures[0].save(handle, format="GIF", save_all=True, append_images=pictures[1:], duration=duration, loop=0)
        return
    import imageio_ffmpeg

    frames_even = [_even(image) for image in images]
    height, width = frames_even[0].shape[:2]
    # ffmpeg writes to a path, not a handle: a temporary one beside the target, renamed over it when complete
    temporary = path.parent / f".{path.name}{TEMPORARY_MARK}{os.getpid()}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio_ffmpeg.write_frames(
        str(temporary), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p", macro_block_size=1
    )
    try:
        writer.send(None)  # start ffmpeg
        for image in frames_even:
            writer.send(image.tobytes())
        writer.close()
        os.replace(temporary, path)
    finally:
        writer.close()
        temporary.unlink(missing_ok=True)


def env_fps(env: VecEnv) -> float:
    """The env's own ``render_fps``, else ``DEFAULT_FPS``."""
    metadata = env.get_attr("metadata", indices=[0])[0] or {}
    fps = metadata.get("render_fps")
    return float(fps) if isinstance(fps, int | float) and fps > 0 else float(DEFAULT_FPS)


def _frame(env: VecEnv) -> np.ndarray:
    return env.get_images()[0]


def _even(image: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: pad the last row or column by repeating it."""
    height, width = image.shape[:2]
    return np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _cannot_render(env_id: str, why: str) -> HarnessError:
    return HarnessError(
        f"{env_id!r} cannot render rgb_array frames ({why}); --video needs an env that does", where="--video"
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


__all__ = [
    "DEFAULT_FPS",
    "VIDEO_INSTALL",
    "WRITERS",
    "check_video_path",
    "env_fps",
    "record_episodes",
    "render_env_config",
    "write_video",
]
