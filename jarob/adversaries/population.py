"""RAP: a population of PAAD adversaries (Vinitsky et al. 2020, read within PAAD as ATSA's
appendix H.2 does; DESIGN.md section 4).

K PAAD directors (`Director`), each with its own parameters, replay buffer and target networks.
Every environment draws one member uniformly at the first step of each episode and that member
attacks the whole episode; each member learns only from the steps of the episodes it played (its
update sees every other step as not attacked) and its replay draws only the items that hold some
of them, so each member's batch is as full of its own steps as a lone PAAD director's. As an
attacker, each test episode also draws one.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jarob.adversaries.base import ADVERSARIES, ObservationAdversary, TeamView
from jarob.adversaries.director import Director, DirectorAttackConfig
from jarob.config import require


@dataclass(frozen=True)
class PopulationConfig(DirectorAttackConfig):
    """RAP: PAAD's settings for each member, and how many members."""

    population: int = 3

    def validate(self, run) -> None:
        super().validate(run)
        require(self.population >= 1, f"adv.population: must be >= 1, got {self.population}")


@ADVERSARIES.register("rap", PopulationConfig)
class Population(ObservationAdversary):
    """adv_state: {"eps", "params" (every leaf [K, ...]), "steps"} and, when built for training,
    {"learner", "buffer"} ([K, ...] each): the members' Director states side by side."""

    learned = True

    def __init__(self, cfg, env, eps: float, layout: tuple[int, int, int] | None = None):
        super().__init__(cfg, env, eps)
        self.size = cfg.population
        self.member = Director(cfg, env, eps, layout, learnable_items_only=True)

    def init(self, key: jax.Array, eps=None) -> dict:
        eps = self.eps if eps is None else eps
        members = jax.vmap(lambda k: self.member.init(k, eps))(jax.random.split(key, self.size))
        return {**members, "eps": jnp.asarray(eps, jnp.float32), "steps": jnp.zeros((), jnp.int32)}

    def initial_carry(self, num_envs: int) -> dict:
        return {**self.member.initial_carry(num_envs), "member": jnp.zeros((num_envs,), jnp.int32)}

    def act(self, adv_state, carry, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False):
        """A new episode draws its member uniformly; the member's director and generator act."""
        k_draw, k_act = jax.random.split(key)
        member = jnp.where(view.first, jax.random.randint(k_draw, (), 0, self.size), carry["member"])
        params = jax.tree.map(lambda x: x[member], adv_state["params"])
        state = {"eps": adv_state["eps"], "params": params, "steps": adv_state["steps"]}
        inner = {k: v for k, v in carry.items() if k != "member"}
        seen, inner, out = self.member.act(state, inner, obs, view, k_act, train)
        return seen, {**inner, "member": member}, {**out, "member": member}

    def update(self, adv_state: dict, records, carry0: dict, actor_end, index: jax.Array, env_steps: jax.Array, key: jax.Array):
        """Every member stores the rollout in its own buffer and takes its own gradient steps,
        with only the attacked steps of its own episodes marked as learnable."""
        members = {k: adv_state[k] for k in ("params", "learner", "buffer")}

        def one(member_state, k, m):
            own = records.replace(attacked=records.attacked & (records.adv_out["member"] == m))
            state = {**member_state, "eps": adv_state["eps"], "steps": adv_state["steps"]}
            new, metrics = self.member.update(state, own, carry0, actor_end, index, env_steps, k)
            return {k: new[k] for k in members}, metrics

        new, metrics = jax.vmap(one)(members, jax.random.split(key, self.size), jnp.arange(self.size))
        return {**adv_state, **new, "steps": env_steps}, {"adv_loss": jnp.mean(metrics["adv_loss"]), "adv_dropped": jnp.sum(metrics["adv_dropped"])}
