"""Images of every size get an extractor: NatureCNN where it fits, GridCNN below; symbols are encoded, not scaled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from rlgru import RecurrentPPO
from rlgru.algorithm.extractor_choice import ExtractorMismatch, choose_extractor
from rlgru.algorithm.extractors import GridCNN
from rlgru.cli import main
from tests.extractor_helpers import TinyImageEnv
from tests.fault_tools import write_config

IMAGE_ENV = {"id": "tests.extractor_helpers:TinyImageEnv", "n_envs": 2}


def image(shape: tuple[int, ...], dtype: type = np.uint8) -> spaces.Box:
    high = 255 if dtype is np.uint8 else 1.0
    return spaces.Box(0, high, shape, dtype)


@pytest.mark.parametrize(
    ("space", "chosen"),
    [
        (image((36, 36, 3)), "cnn"),  # the smallest NatureCNN takes
        (image((3, 84, 84)), "cnn"),
        (image((35, 35, 3)), "grid_cnn"),
        (image((7, 7, 3)), "grid_cnn"),  # MiniGrid's view
        (image((1, 1, 3)), "grid_cnn"),
        (image((7, 7, 3), np.float32), "mlp"),  # not an image by SB3's test: flattened, as SB3 does
        (spaces.Box(-1, 1, (4,), np.float32), "mlp"),
        (spaces.Dict({"image": image((40, 40, 3)), "x": spaces.Discrete(3)}), "multi_input"),
    ],
)
def test_auto_picks_nature_cnn_where_it_fits_and_grid_cnn_below(space: spaces.Space, chosen: str) -> None:
    assert choose_extractor("auto", space).name == chosen


@pytest.mark.parametrize(
    ("space", "encoding"),
    [
        (image((1, 1, 3)), "embedding"),
        (image((2, 5, 3)), "one_hot"),
        (image((7, 7, 3)), "auto"),
        (image((3, 7, 7)), "scaled"),
        (image((35, 35, 1)), "embedding"),
        (spaces.Box(0.0, 1.0, (6, 9), np.float32), "none"),  # one channel, no channel axis
        (spaces.Box(0.0, 1.0, (20, 20, 4), np.float32), "auto"),
    ],
)
def test_grid_cnn_reads_images_of_every_size(space: spaces.Box, encoding: str) -> None:
    extractor = GridCNN(space, features_dim=12, encoding=encoding)
    space.seed(0)
    batch = th.as_tensor(np.stack([space.sample() for _ in range(3)])).float()
    features = extractor(batch)
    assert features.shape == (3, 12) and th.isfinite(features).all()
    assert sum(p.numel() for p in extractor.parameters()) < 2_000_000, "the pool keeps the linear layer small"


def test_symbol_encodings_tell_neighbouring_indices_apart() -> None:
    """MiniGrid's object 5 and object 6 are different things: divided by 255 they are almost the same number."""
    space = image((7, 7, 3))
    first = np.zeros((1, 7, 7, 3), np.uint8)
    second = first.copy()
    first[0, 3, 3, 0], second[0, 3, 3, 0] = 5, 6
    for encoding in ("embedding", "one_hot"):
        th.manual_seed(0)
        extractor = GridCNN(space, encoding=encoding)
        one_hot_or_embedded = [extractor._encode(th.as_tensor(x).permute(0, 3, 1, 2).float()) for x in (first, second)]
        difference = (one_hot_or_embedded[0] - one_hot_or_embedded[1]).abs().max()
        assert difference > 0.1, encoding
    one_hot = GridCNN(space, encoding="one_hot", n_values=7)._encode(th.as_tensor(first).permute(0, 3, 1, 2).float())
    assert one_hot.shape == (1, 3 * 7, 7, 7) and th.equal(one_hot.sum(dim=1), th.full((1, 7, 7), 3.0))


def test_grid_cnn_policy_reads_raw_symbols_not_intensities() -> None:
    """The policy must not divide by 255 before GridCNN's embedding looks the symbols up."""
    model = RecurrentPPO(
        "CnnPolicy",
        TinyImageEnv(side=5),
        n_steps=8,
        batch_size=8,
        policy_kwargs={"features_extractor_class": GridCNN, "hidden_size": 8},
    )
    assert model.policy.normalize_images is False
    observation = np.full((1, 3, 5, 5), 4, np.float32)  # channel-first, as SB3's VecTransposeImage hands it over
    with th.no_grad():
        through_policy = model.policy.extract_features(th.as_tensor(observation))
        direct = model.policy.features_extractor(th.as_tensor(observation))
    assert th.equal(through_policy, direct)


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="encoding must be one of"):
        GridCNN(image((7, 7, 3)), encoding="pixels")  # type: ignore[arg-type]


def test_a_named_builtin_that_does_not_fit_says_why() -> None:
    with pytest.raises(ExtractorMismatch, match=r"cnn does not fit Box\(7, 7, 3\) uint8: NatureCNN needs images of"):
        choose_extractor("cnn", image((7, 7, 3)))
    with pytest.raises(ExtractorMismatch, match="auto finds no features extractor for Dict"):
        choose_extractor("auto", spaces.Dict({"image": image((7, 7, 3)), "text": spaces.Text(5)}))


def test_first_printed_line_names_the_extractor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, env=IMAGE_ENV, training={"total_timesteps": 64}, evaluation={"episodes": 2})
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("features extractor: GridCNN (rlgru.algorithm.extractors; encoding embedding)"), first
    assert "policy.extractor auto: a 5x5x3 image, too small for NatureCNN" in first
    model = RecurrentPPO.load(tmp_path / "run" / "model.zip")
    assert isinstance(model.policy.features_extractor, GridCNN)


def test_an_observation_no_extractor_fits_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, env=IMAGE_ENV, policy={"extractor": "cnn"})
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "policy.extractor: cnn does not fit Box(5, 5, 3) uint8: NatureCNN needs images of at least 36x36" in err
    assert not (tmp_path / "run").exists()


def test_extractor_settings_are_checked_against_the_chosen_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, env=IMAGE_ENV, policy={"features_extractor_kwargs": {"encodng": "one_hot"}})
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "policy.features_extractor_kwargs: encodng: unknown setting (did you mean 'encoding'?)" in err
    config = write_config(
        tmp_path, env=IMAGE_ENV, policy={"extractor": "grid_cnn", "features_extractor_kwargs": {"encoding": "rgb"}}
    )
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    assert "policy.features_extractor_kwargs: encoding: Input should be 'auto'" in capsys.readouterr().err


@pytest.mark.parametrize("encoding", ["embedding", "one_hot"])
def test_grid_cnn_policy_exports_and_matches_predict(tmp_path: Path, encoding: str) -> None:
    pytest.importorskip("onnxruntime")
    config = write_config(
        tmp_path,
        env=IMAGE_ENV,
        policy={"extractor": "grid_cnn", "features_extractor_kwargs": {"encoding": encoding, "n_values": 8}},
        training={"total_timesteps": 64},
        evaluation={"episodes": 2},
    )
    run = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run), "--no-progress"]) == 0
    assert main(["export", str(run), "--check-steps", "20"]) == 0
    assert (run / "model.onnx").is_file()
