"""Hyper-parameter tuning on Optuna: ``rlgru tune`` searches a config's ``tune:`` space, one run directory per trial.

The driver (``rlgru.tune.driver``) asks Optuna for trials and hands each to a worker process or a Ray task
(``rlgru.tune.trial_run``), which trains it through the ordinary harness and reports its evaluations to the pruner.
"""

from rlgru.tune.driver import TuneOptions, TuneOutcome, run_study

__all__ = ["TuneOptions", "TuneOutcome", "run_study"]
