"""``rlgru eval RUN --video PATH`` writes a GIF or MP4 that reads back; envs that cannot draw are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlgru.cli import main
from tests.fault_tools import write_config

IMAGE_ENV = {"id": "tests.extractor_helpers:TinyImageEnv", "n_envs": 2}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("video")
    config = write_config(directory, env=IMAGE_ENV, training={"total_timesteps": 64}, evaluation={"episodes": 2})
    assert main(["train", str(config), "--run-dir", str(directory / "run"), "--no-progress"]) == 0
    return directory / "run"


def test_gif_of_evaluation_episodes_reads_back(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image, ImageSequence

    path = tmp_path / "episodes.gif"
    assert main(["eval", str(run), "--episodes", "2", "--video", str(path), "--video-episodes", "2"]) == 0
    # two episodes of 4 steps: the first frame, then one per step but the last (the vec env has reset by then)
    assert f"wrote {path} (2 episode(s), 8 frames at 4 fps)" in capsys.readouterr().out
    with Image.open(path) as gif:
        frames = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(gif)]
    assert 1 < len(frames) <= 8 and frames[0].shape == (40, 40, 3)  # identical neighbours may be merged


def test_mp4_of_evaluation_episodes_reads_back(run: Path, tmp_path: Path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    path = tmp_path / "episodes.mp4"
    assert main(["eval", str(run), "--episodes", "1", "--video", str(path)]) == 0
    reader = imageio_ffmpeg.read_frames(str(path))
    metadata = next(reader)
    frames = list(reader)
    assert metadata["size"] == (40, 40) and len(frames) == 4


@pytest.mark.parametrize(
    ("video", "env", "fragment"),
    [
        ("out.avi", None, "--video: {tmp}/out.avi: give a .gif or .mp4 file name"),
        (
            "out.gif",
            "tests.helpers:CueRecallEnv",
            "--video: 'tests.helpers:CueRecallEnv' cannot render rgb_array frames",
        ),
    ],
)
def test_refusals_are_one_line_before_anything_is_played(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], video: str, env: str | None, fragment: str
) -> None:
    arguments = ["eval", str(run / "model.zip"), "--video", str(tmp_path / video)]
    if env is not None:
        arguments += ["--env", env]
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert fragment.format(tmp=tmp_path) in err, err
    assert not (tmp_path / video).exists()
