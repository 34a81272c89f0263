"""The POPGym side of the POPGym comparison: the paper's published GRU/LSTM numbers, its metric (MMER) computed over
our runs, and the differences between the two setups (POPGym's wrappers run through
``rlgru.env_plumbing.popgym_wrappers``).

Source: Morad, Kortvelesy, Bettini, Liwicki, Prorok, "POPGym: Benchmarking Partially Observable Reinforcement
Learning", ICLR 2023 (https://openreview.net/forum?id=chDrutUTs0K, arXiv:2303.01859); the experiments ran the code
at proroklab/popgym tag ``paper`` (commit e397e5e), ``popgym/baselines/ppo.py``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

PAPER = (
    "Morad, Kortvelesy, Bettini, Liwicki, Prorok. POPGym: Benchmarking Partially Observable Reinforcement Learning. "
    "ICLR 2023. https://openreview.net/forum?id=chDrutUTs0K (arXiv:2303.01859)"
)

#: POPGym ids this comparison runs -> the environment's name in the paper (POPGym renamed StatelessCartPole to
#: PositionOnlyCartPole after the paper; the Easy levels of all four are defined as at the paper's commit, see
#: DIFFERENCES for the one change in CountRecall's action space)
TASKS: dict[str, str] = {
    "popgym-RepeatFirstEasy-v0": "RepeatFirstEasy",
    "popgym-RepeatPreviousEasy-v0": "RepeatPreviousEasy",
    "popgym-CountRecallEasy-v0": "CountRecallEasy",
    "popgym-PositionOnlyCartPoleEasy-v0": "StatelessCartPoleEasy",
}

Core = Literal["gru", "lstm"]


# ------------------------------------------------------------------------------------------- published numbers
@dataclass(frozen=True)
class Published:
    """One published figure: the mean over the paper's trials of each trial's MMER, and their standard deviation."""

    env_id: str
    core: Core
    level: Literal["Easy", "Medium", "Hard"]
    paper_env: str
    mmer_mean: float
    mmer_std: float | None
    where: str  # table or figure of the paper
    via: str  # where this number was read, when that is not the paper itself
    verified_against_paper: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Every GRU/LSTM number for TASKS that could be found (see MISSING for the rest). The paper's per-environment numbers
#: are in its Appendix Table 3 (mean +- std of MMER over 3 trials, per the one transcription found); the paper itself
#: could not be read here, so this one figure is that third party's transcription, quoted with its provenance.
PUBLISHED: tuple[Published, ...] = (
    Published(
        env_id="popgym-PositionOnlyCartPoleEasy-v0",
        core="lstm",
        level="Easy",
        paper_env="StatelessCartPoleEasy",
        mmer_mean=1.000,
        mmer_std=0.000,
        where="Appendix Table 3",
        via=(
            "transcription of Appendix Table 3 in a public GitHub file ('R44 - published external-reference "
            "compatibility on the original POPGym StatelessCartPole benchmark'), found through the code index, "
            "which does not name its repository"
        ),
        verified_against_paper=False,
    ),
)

#: (env id, core) pairs with no published number found: the report should print "not found", never a guess
MISSING: tuple[tuple[str, Core], ...] = tuple(
    (env_id, core)
    for env_id in TASKS
    for core in ("gru", "lstm")
    if not any(p.env_id == env_id and p.core == core for p in PUBLISHED)
)


def plain_env_id(env_id: str) -> str:
    """``popgym:popgym-X-v0`` (the suite's form, which makes workers import popgym) -> ``popgym-X-v0``."""
    return env_id.split(":", 1)[1] if env_id.startswith("popgym:") else env_id


def published(env_id: str, core: str) -> Published | None:
    """The paper's number for this POPGym env and core (``gru``/``lstm``), or None when none was found."""
    env_id = plain_env_id(env_id)
    return next((p for p in PUBLISHED if p.env_id == env_id and p.core == core), None)


# ------------------------------------------------------------------------------------------------------ MMER
@dataclass(frozen=True)
class MMER:
    """POPGym's metric over the runs of one task and core: the mean and standard deviation over seeds of each run's
    max-mean episodic reward. Runs without a usable curve are named in ``excluded``, never counted as zero."""

    task: str
    core: str
    mean: float | None
    std: float | None  # sample standard deviation (n - 1); None below two runs
    n: int
    per_run: dict[str, float] = field(default_factory=dict)  # run id -> that run's MMER
    excluded: dict[str, str] = field(default_factory=dict)  # run id -> why it is left out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_mmer(result: Mapping[str, Any]) -> float | None:
    """One run's MMER: the best mean evaluation return on its learning curve; None for a failed run or no curve.

    ``curve`` points are ``[timesteps, mean_return, ...]``; the last point is the final evaluation.
    """
    if result.get("status") != "ok":
        return None
    returns = [float(point[1]) for point in result.get("curve") or [] if point[1] is not None]
    returns = [value for value in returns if math.isfinite(value)]
    return max(returns) if returns else None


def _why_excluded(result: Mapping[str, Any]) -> str:
    if result.get("status") != "ok":
        return f"failed: {result.get('error') or 'no error recorded'}"
    return "no evaluation on its curve"


def mmer(results: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], MMER]:
    """MMER per (task, core) over the given results (``result.json`` contents), as the paper aggregates over trials.

    The paper takes, per trial, the maximum over training of the mean return of the episodes in each training batch
    (stochastic policy); here each run's curve holds deterministic-policy evaluations every ``evaluation.freq`` steps
    (DIFFERENCES says why).
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for result in results:
        groups.setdefault((str(result["task"]), str(result["core"])), []).append(result)
    summaries: dict[tuple[str, str], MMER] = {}
    for (task, core), runs in sorted(groups.items()):
        per_run: dict[str, float] = {}
        excluded: dict[str, str] = {}
        for result in runs:
            run_id = str(result.get("run_id") or f"{task}-{core}-s{result.get('seed')}")
            value = run_mmer(result)
            if value is None:
                excluded[run_id] = _why_excluded(result)
            else:
                per_run[run_id] = value
        values = list(per_run.values())
        summaries[(task, core)] = MMER(
            task=task,
            core=core,
            mean=statistics.fmean(values) if values else None,
            std=statistics.stdev(values) if len(values) >= 2 else None,
            n=len(values),
            per_run=per_run,
            excluded=excluded,
        )
    return summaries


# ------------------------------------------------------------------------------------------------ differences
DIFFERENCES = """\
What differs between these runs and the POPGym paper's GRU/LSTM numbers (Morad et al., ICLR 2023):
- Budget: the paper trains 10M-15M environment steps per run (POPGYM_STEPS in popgym/baselines/ppo.py defaults
  to 10M at the paper's tag and 15M since; the one transcription of the paper's table found says 15M); this suite
  trains 200k-600k (configs/bench/popgym.yaml), sized so the whole suite runs within 45 minutes on 2 CPU cores.
  Low numbers here mean "not learned within this budget", not "cannot learn".
- Trials: the paper reports mean and std over 3 trials per model and environment (popgym README at the paper's
  tag); this suite runs 5 seeds and reports the sample standard deviation (the paper does not say which).
- Algorithm: the paper uses RLlib's PPO with POPGym's own memory models; this suite uses rlgru's RecurrentPPO.
- Hyper-parameters: the paper uses train batch 65,536 steps (64 envs x 1,024 steps, complete episodes),
  minibatch 8,192, BPTT over whole episodes (max_seq_len 1,024), gamma 0.99, value loss coefficient 1.0 and
  RLlib's other PPO defaults; its models have a 128-unit linear+LeakyReLU preprocessor, a 256-unit memory and
  two-layer 128-unit actor and critic heads. This suite uses the much smaller settings in configs/bench/popgym.yaml.
- Metric: the paper's MMER takes, per epoch, the mean return of the training-batch episodes (stochastic policy)
  and keeps the maximum over training. Here each run's MMER is the maximum over its learning curve of the mean
  return of deterministic-policy evaluation episodes (32 episodes on separately seeded envs, at least 10 times
  during training): rlgru's results record evaluations, not per-batch training returns, and the evaluated policy is
  the one a user would deploy. A deterministic policy can score above or below the stochastic one, and a maximum over
  11-13 noisy points is biased upward less than one over the paper's 150-230 epochs (10M-15M / 65,536).
- Observations: both put the previous action and an is-first-step flag into the observation with POPGym's own
  wrappers (Antialias(PreviousAction(env))); both flatten discrete parts to one-hot vectors.
- Environments: popgym 1.0.x (gymnasium API) instead of the paper's gym-0.2x version; the Easy levels of the four
  tasks are defined as at the paper's commit, but CountRecall's action space grew by one (the paper's version could
  not answer the largest count) and StatelessCartPole is now called PositionOnlyCartPole.
"""


__all__ = [
    "DIFFERENCES",
    "MISSING",
    "MMER",
    "PAPER",
    "PUBLISHED",
    "Published",
    "TASKS",
    "mmer",
    "plain_env_id",
    "published",
    "run_mmer",
]
