"""Your own network from YAML: ``policy.extractor: module:Class`` trains, saves, loads (safely) and exports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rlgru import RecurrentPPO
from rlgru.cli import main
from rlgru.harness.config import validate_config
from rlgru.harness.errors import HarnessError
from rlgru.runtime.safe_load import UntrustedPickleError
from tests.extractor_helpers import TinyExtractor
from tests.fault_tools import FAULT_CONFIG, write_config

TINY = "tests.extractor_helpers:TinyExtractor"


def config_error(policy: dict) -> str:
    with pytest.raises(HarnessError) as caught:
        validate_config({**FAULT_CONFIG, "policy": {**FAULT_CONFIG["policy"], **policy}}, where="x.yaml")
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("policy", "fragment"),
    [
        ({"extractor": "tests.no_such_module:Net"}, "policy.extractor: cannot import module 'tests.no_such_module'"),
        ({"extractor": "tests.extractor_helpers:Missing"}, "policy.extractor: module 'tests.extractor_helpers' has no"),
        ({"extractor": "tests.extractor_helpers:NotAnExtractor"}, "not a subclass of stable_baselines3's"),
        ({"extractor": "flatten"}, "policy.extractor: unknown extractor 'flatten'; choose one of auto, mlp"),
        (
            {"extractor": TINY, "features_extractor_kwargs": {"scales": 2}},
            "policy.features_extractor_kwargs: scales: unknown setting (did you mean 'scale'?); TinyExtractor takes "
            "features_dim, scale",
        ),
        (
            {"extractor": TINY, "features_extractor_kwargs": {"features_dim": "wide"}},
            "features_dim: Input should be a valid integer",
        ),
    ],
)
def test_config_load_refuses_what_is_no_extractor(policy: dict, fragment: str) -> None:
    assert fragment in config_error(policy)


def test_own_extractor_trains_saves_loads_and_evaluates(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        policy={"extractor": TINY, "features_extractor_kwargs": {"features_dim": 6, "scale": 0.5}},
        training={"total_timesteps": 64},
        evaluation={"episodes": 2},
    )
    run = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run), "--no-progress"]) == 0
    model = RecurrentPPO.load(run / "model.zip")  # its module is imported: the safe loader names the class
    extractor = model.policy.features_extractor
    assert type(extractor) is TinyExtractor and extractor.scale == 0.5 and extractor.features_dim == 6
    assert main(["eval", str(run), "--episodes", "2"]) == 0


def test_own_extractor_outside_the_allow_list_needs_its_module_or_trust_pickle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = RecurrentPPO(
        "MlpGruPolicy",
        "rlgru/TMaze-Easy-v0",
        n_steps=8,
        batch_size=8,
        policy_kwargs={"features_extractor_class": TinyExtractor, "hidden_size": 4},
    )
    model.save(tmp_path / "model.zip")
    monkeypatch.delitem(sys.modules, "tests.extractor_helpers")  # a fresh process that never imported it
    with pytest.raises(UntrustedPickleError) as caught:
        RecurrentPPO.load(tmp_path / "model.zip")
    message = str(caught.value)
    assert "tests.extractor_helpers.TinyExtractor" in message and "--trust-pickle" in message
    assert "import tests.extractor_helpers before loading" in message
    trusted = RecurrentPPO.load(tmp_path / "model.zip", trust_pickle=True)
    assert type(trusted.policy.features_extractor).__name__ == "TinyExtractor"


def test_own_extractor_exports_or_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    for name, extractor in (("plain", TINY), ("numpy", "tests.extractor_helpers:NumpyExtractor")):
        config = write_config(
            tmp_path,
            name=name,
            policy={"extractor": extractor},
            training={"total_timesteps": 64},
            evaluation={"episodes": 2},
        )
        assert main(["train", str(config), "--run-dir", str(tmp_path / name), "--no-progress"]) == 0
    assert main(["export", str(tmp_path / "plain"), "--check-steps", "20"]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "numpy"), "--check-steps", "20"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "the traced policy" in err, err
    assert not (tmp_path / "numpy" / "model.onnx").exists()
