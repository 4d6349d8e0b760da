"""Observation adversaries: one interface (`base.ObservationAdversary`) for every attacker.

`make(cfg, env, eps)` builds the adversary named by an `AdvConfig`.
"""

from __future__ import annotations

from jarob.adversaries.base import ObservationAdversary, TeamView, team_log_policy
from jarob.adversaries.gradient import FGSM, PGD, pgd_attack
from jarob.adversaries.noise import NoAttack, UniformNoise

REGISTRY = {
    "none": NoAttack,
    "rn": UniformNoise,
    "fgsm": FGSM,
    "pgd": PGD,
}
NAMES = tuple(REGISTRY)


def make(cfg, env, eps: float | None = None) -> ObservationAdversary:
    """The adversary of `cfg` (an AdvConfig) on `env`, with budget eps (None: the env's default)."""
    if cfg.name not in REGISTRY:
        raise ValueError(f"adv: unknown {cfg.name!r}; allowed: {', '.join(NAMES)}")
    return REGISTRY[cfg.name](cfg, env, env.default_eps if eps is None else eps)


__all__ = ["NAMES", "REGISTRY", "FGSM", "PGD", "NoAttack", "ObservationAdversary", "TeamView", "UniformNoise", "make", "pgd_attack", "team_log_policy"]
