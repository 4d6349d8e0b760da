"""The adversary interface (DESIGN.md section 3).

Every adversary declares its *channel*, where the rollout calls it (`jarob.rollout.act_step`):

    observation  before the team acts: perturbs each agent's observation (FGSM, PGD, PAAD, ATSA, ...)
    action       between the team's chosen actions and env.step: replaces or perturbs some
                 agents' actions (`jarob.adversaries.malicious`; ROMANCE)
    message      between what communicating agents send and what they receive (CroMAC); only
                 with a learner that communicates
    training     how the team samples its actions while it learns, never at test time (TRAM)

It registers itself with the config dataclass it owns (`@ADVERSARIES.register("fgsm",
GradientConfig)`); `adv=<name>` and an evaluation column `<name>` resolve through `ADVERSARIES`.

An observation adversary is a set of pure functions used inside the jitted rollout:

    init(key, eps)                              -> adv_state (a dict: the budget "eps", plus
                                                   the parameters of learned attackers)
    initial_carry(num_envs)                     -> per-environment recurrent context ({} if none)
    act(adv_state, carry, obs, view, key, train) -> (perturbed obs [N, O], carry, out) of one
                                                   environment; `out` is what the rollout records
                                                   for the attacker (a director's target actions)
    update(adv_state, rollout, ...)             -> (adv_state, metrics)   (learned ones only)
    attacker_state(params, eps)                 -> the test-mode adv_state of trained parameters

Static attackers implement `perturb(adv_state, obs, view, key, train)`; `act` wraps it. An
action adversary's `act(adv_state, carry, actions, view, key, train)` takes the team's chosen
actions [N] and an `ActionView` instead, and returns the actions played; a training adversary's
takes them with a `TrainingView` (while the team learns only).
`view` (a `TeamView`) lets the attacker query the protagonist at the current step: its
utilities as a function of the observations it would see, its available actions, the world
state and whether the step starts an episode. `train` selects the training mode (exploration)
or the test mode of learned attackers. Every perturbation is projected onto B_eps(o) ∩ the
env's valid range on perturbable features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from jarob.ops import mask_logits
from jarob.registry import Registry

ADVERSARIES = Registry("adv", ("jarob.adversaries",))
CHANNELS = ("observation", "action", "message", "training")


@dataclass(frozen=True)
class TeamView:
    """The protagonist at one step of one environment, as an attacker may query it."""

    q_fn: Callable[[jax.Array], jax.Array]  # obs [N, O] -> utilities [N, A] at the current GRU state
    avail: jax.Array  # [N, A] bool
    state: jax.Array  # [S] world state (never perturbed)
    first: jax.Array = False  # [] bool, this step starts an episode


@dataclass(frozen=True)
class TrainingView:
    """A learning policy-gradient team at one step of one environment, as a training-time
    adversary may query it (`jarob.adversaries.tram`)."""

    scores: jax.Array  # [N, A] the actors' logits on what they saw
    avail: jax.Array  # [N, A] bool
    log_pi: Callable[[object], jax.Array]  # actor parameters -> log pi [N, A] at this step (the GRU context held fixed)
    params: object  # the actor's parameters as it acts
    advantages: Optional[jax.Array] = None  # [N, A] the team's per-action advantages (None: its critic has none)
    policy_grad: object = None  # the gradient of J the team's previous update followed (a pytree like params; None: not kept)


@dataclass(frozen=True)
class ActionView:
    """The protagonist at one step of one environment, as an action adversary may query it."""

    scores: jax.Array  # [N, A] its policy view (utilities) on what it saw
    avail: jax.Array  # [N, A] bool
    state: jax.Array  # [S] world state
    first: jax.Array  # [] bool, this step starts an episode
    joint_value: Optional[Callable[[jax.Array], jax.Array]] = None  # chosen utilities [N] -> the team's joint value (None: the team has none)


def team_log_policy(q: jax.Array, avail: jax.Array, temperature: float) -> jax.Array:
    """log pi(.|o) of a Q-learner read as a distribution: log softmax(Q / T) over the available
    actions only (DESIGN.md section 4)."""
    return jax.nn.log_softmax(mask_logits(q / temperature, avail), axis=-1)


class Adversary:
    """Base class of every adversary: static configuration only; every method is pure.

    The budget lives in the adversary state (`adv_state["eps"]`), so one compiled program serves
    every eps of a sweep: `init(key, eps)` defaults it to the one given at construction. A
    learned adversary also takes the run's `layout` (num_envs, rollout_len, total_iterations)
    when built for training."""

    learned = False
    channel = "observation"
    stat_names: tuple[str, ...] = ()  # per-chunk statistics of `rollout_stats`, logged in metrics.csv

    def rollout_stats(self, records) -> dict:
        """{name: (sum, weight)} over one training rollout's records ([T, E] StepRecord); a
        chunk logs sum / weight of each (none by default)."""
        return {}

    def __init__(self, cfg, env, eps: float, layout: tuple[int, int, int] | None = None):
        self.cfg = cfg
        self.spec = env.perturbation
        self.eps = float(eps)

    def init(self, key: jax.Array, eps=None) -> dict:
        return {"eps": jnp.asarray(self.eps if eps is None else eps, jnp.float32)}

    def initial_carry(self, num_envs: int):
        return {}

    def attacker_state(self, params, eps) -> dict:
        """Learned adversaries: the test-mode state of trained acting parameters `params` at
        budget eps (what `jarob.evaluate` uses; batched alike when eps is)."""
        return {"eps": jnp.asarray(eps, jnp.float32), "params": params, "steps": jnp.zeros(jnp.shape(eps), jnp.int32)}


class ObservationAdversary(Adversary):
    """An adversary of the observation channel."""

    def act(self, adv_state, carry, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False):
        return self.perturb(adv_state, obs, view, key, train), carry, {}

    def perturb(self, adv_state, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False) -> jax.Array:
        raise NotImplementedError

    def project(self, eps: jax.Array):
        """proj(clean, x): onto B_eps(clean) ∩ valid range, perturbable features only."""
        return lambda clean, x: self.spec.project(clean, x, eps)

    def random_start(self, key: jax.Array, obs: jax.Array, eps: jax.Array) -> jax.Array:
        """A uniform point of B_eps(obs) ∩ valid range (perturbable features only)."""
        return self.spec.random_point(key, obs, eps)


class TrainingAdversary(Adversary):
    """An adversary of the training channel: `act(adv_state, carry, actions [N], view:
    TrainingView, key, train) -> (actions played [N], carry, what it records)`, called only while
    the team learns (never in an evaluation or on a frozen victim). Per-chunk statistics:
    `rollout_stats(records) -> {name: (sum, weight)}` over a rollout's records, logged as
    sum / weight per chunk under the names of `stat_names`."""

    channel = "training"

    def act(self, adv_state, carry, actions: jax.Array, view: TrainingView, key: jax.Array, train: bool = False):
        raise NotImplementedError


class ActionAdversary(Adversary):
    """An adversary of the action channel: `act(adv_state, carry, actions [N], view: ActionView,
    key, train) -> (actions played [N], carry, what it records)`."""

    channel = "action"

    def act(self, adv_state, carry, actions: jax.Array, view: ActionView, key: jax.Array, train: bool = False):
        raise NotImplementedError


def make(cfg, env, eps: float | None = None, layout: tuple[int, int, int] | None = None) -> Adversary:
    """The adversary of `cfg` (its registered config) on `env`, with budget eps (None: the env's
    default). A learned adversary built for training gets the run's `layout` (num_envs,
    rollout_len, total_iterations); without it, it is an attacker in test mode."""
    cls = ADVERSARIES.get(cfg.name)
    return cls(cfg, env, env.default_eps if eps is None else eps, layout)
