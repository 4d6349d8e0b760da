"""Adversaries: one interface (`base.Adversary`) for every attacker, on four channels
(observation, action, message, training). Each registers itself in `ADVERSARIES` with the config
dataclass it owns; `make(cfg, env, eps)` builds the one a config names.
"""

from __future__ import annotations

from jarob.adversaries.base import ADVERSARIES, ActionAdversary, ActionView, Adversary, ObservationAdversary, TeamView, TrainingAdversary, TrainingView, make, team_log_policy

__all__ = ["ADVERSARIES", "ActionAdversary", "ActionView", "Adversary", "ObservationAdversary", "TeamView", "TrainingAdversary", "TrainingView", "make", "team_log_policy"]
