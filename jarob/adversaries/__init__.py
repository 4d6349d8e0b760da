"""Observation adversaries: one interface (`base.ObservationAdversary`) for every attacker.

`make(cfg, env, eps)` builds the adversary named by an `AdvConfig`.
"""

from __future__ import annotations

from jarob.adversaries.atla import ATLA
from jarob.adversaries.base import ObservationAdversary, TeamView, team_log_policy
from jarob.adversaries.director import Director
from jarob.adversaries.gradient import FGSM, PGD, pgd_attack
from jarob.adversaries.noise import NoAttack, UniformNoise
from jarob.adversaries.population import Population

REGISTRY = {
    "none": NoAttack,
    "rn": UniformNoise,
    "fgsm": FGSM,
    "pgd": PGD,
    "atla": ATLA,
    "paad": Director,
    "atsa": Director,
    "rap": Population,
}
NAMES = tuple(REGISTRY)


def make(cfg, env, eps: float | None = None, layout: tuple[int, int, int] | None = None) -> ObservationAdversary:
    """The adversary of `cfg` (an AdvConfig) on `env`, with budget eps (None: the env's default).
    A learned adversary built for training gets the run's `layout` (num_envs, rollout_len,
    total_iterations); without it, it is an attacker in test mode."""
    if cfg.name not in REGISTRY:
        raise ValueError(f"adv: unknown {cfg.name!r}; allowed: {', '.join(NAMES)}")
    eps = env.default_eps if eps is None else eps
    cls = REGISTRY[cfg.name]
    return cls(cfg, env, eps, layout) if cls.learned else cls(cfg, env, eps)


__all__ = ["ATLA", "NAMES", "REGISTRY", "Director", "Population", "FGSM", "PGD", "NoAttack", "ObservationAdversary", "TeamView", "UniformNoise", "make", "pgd_attack", "team_log_policy"]
