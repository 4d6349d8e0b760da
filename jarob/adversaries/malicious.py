"""Malicious agents: an action adversary that hijacks one agent now and then.

ERNIE's evaluation of robustness to malicious actions (ernie_adversarial_regularization.txt
section 5: "we adversarially change the action of a randomly selected agent ... 5% or 3% of the
time"): at each step, with probability `rate`, one agent drawn uniformly among those that have a
choice (more than one available action: in SMAX a dead unit has only `stop`) is hijacked and
plays

- `mode: worst`: the available action that lowers the team's joint value most given its
  teammates' chosen actions, argmin_b Q_tot(Q_1(a_1), ..., Q_k(b), ..., Q_N(a_N); s), with the
  utilities the team computed on what it saw; where the team has no joint value (IQL, or a team
  saved without its mixer) its own lowest utility, argmin_b Q_k(b);
- `mode: random`: a uniformly random available action.

It acts the same in training and in test mode and learns nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jarob.adversaries.base import ADVERSARIES, ActionAdversary, ActionView
from jarob.config import require, require_choice
from jarob.ops import NEG_INF, masked_argmax, take, uniform_available


@dataclass(frozen=True)
class MaliciousConfig:
    name: str
    rate: float  # probability, per step, that one agent is hijacked
    mode: str  # worst (lowers the team's joint value most) | random (a uniformly random available action)

    def validate(self, run) -> None:
        require(0.0 <= self.rate <= 1.0, f"adv.rate: must lie in [0, 1], got {self.rate}")
        require_choice(self, "adv.", "mode", ("worst", "random"))


def worst_action(view: ActionView, chosen: jax.Array, agent: jax.Array) -> jax.Array:
    """The available action of `agent` that minimises the team's joint value with every other
    agent's `chosen` action kept (its own lowest utility without a joint value)."""
    own = view.scores[agent]  # [A]
    if view.joint_value is None:
        values = own
    else:
        utilities = take(view.scores, chosen)  # [N]
        candidates = jnp.broadcast_to(utilities, own.shape + utilities.shape).at[:, agent].set(own)  # [A, N]
        values = jax.vmap(view.joint_value)(candidates)
    return masked_argmax(-values, view.avail[agent])


@ADVERSARIES.register("malicious", MaliciousConfig)
class Malicious(ActionAdversary):
    """adv_state: {"eps"} (unused: the budget is the rate). Records the hijacked agent (-1: none)."""

    def act(self, adv_state, carry, actions: jax.Array, view: ActionView, key: jax.Array, train: bool = False):
        k_coin, k_agent, k_action = jax.random.split(key, 3)
        choice = jnp.sum(view.avail, axis=-1) > 1  # [N] agents with more than one available action
        hijack = (jax.random.uniform(k_coin) < self.cfg.rate) & jnp.any(choice)
        agent = jax.random.categorical(k_agent, jnp.where(choice, 0.0, NEG_INF))
        if self.cfg.mode == "random":
            action = uniform_available(k_action, view.avail[agent])
        else:
            action = worst_action(view, actions, agent)
        played = jnp.where(hijack, actions.at[agent].set(action.astype(actions.dtype)), actions)
        return played, carry, {"hijacked": jnp.where(hijack, agent, -1)}
