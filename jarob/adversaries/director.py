"""Learned director adversaries: PAAD and ATSA (DESIGN.md section 4).

At every step a *director* picks a target action a^_i among each agent's available actions from
the *clean* observations (its own GRU over its own history: clean obs, its previous target), and
a targeted FGSM/PGD toward a^_i (PAAD's actor, ATSA's STor, eqs. 12-13) realises it in the
observations the team sees. The director learns from r^ = -r with its own replay buffer of
(clean obs, state, target actions, -r, the team's actions) sequences and its own target networks.

- PAAD: a QMIX director (`ValueDecomposition`), epsilon-greedy in training, greedy as an attacker.
- ATSA: SDor (`SoftFactorizedQ`), a^_i ~ h_i in training and as an attacker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import jax
import jax.numpy as jnp
from flax import struct

from jarob import buffer as replay
from jarob import sequence
from jarob.adversaries.base import ADVERSARIES, ObservationAdversary, TeamView
from jarob.adversaries.gradient import configured_pgd
from jarob.config import require, require_choice, require_positive, require_unit
from jarob.learners.soft_factorized import SoftFactorizedQ
from jarob.learners.value_decomposition import ValueDecomposition
from jarob.ops import epsilon_greedy, linear_schedule
from jarob.sequence import Sequence, from_steps


@dataclass(frozen=True)
class DirectorConfig:
    """A learned director (PAAD's QMIX director, ATSA's SDor): it picks each agent's target
    action from the clean observations and learns from -r (DESIGN.md section 4)."""

    name: str  # qmix (PAAD: epsilon-greedy QMIX) | sdor (ATSA: factorized soft Q-learning)
    hidden_dim: int  # GRU width of its agent networks
    mixer_embed_dim: int  # QMIX mixer width / SDor weight and value networks' width
    hypernet_hidden: int  # QMIX hypernetwork width
    lr: float
    lr_final: float
    grad_clip: float
    gamma: float
    td_lambda: float
    reward_scale: float
    eps_start: float  # qmix: epsilon-greedy exploration, linear in env steps
    eps_end: float
    eps_anneal_steps: int
    alpha_start: float  # sdor: entropy temperature, linear from alpha_start to alpha_end
    alpha_end: float
    alpha_anneal_steps: int
    value: str  # sdor: individual V_i: logsumexp (eq. 5) | network (eq. 7's V^i, an output of its own fitted by eq. 9)
    individual_alpha: str  # sdor: alpha_i in eqs. 9-10: shared (alpha_i = alpha) | weighted (alpha_i = alpha / lambda_i, eq. 6)
    kappa: float  # sdor: weight of the SDor-STor loss (ATSA eq. 15); 0 = the ablation
    stor_action: str  # sdor: the protagonist's action in eq. 14: greedy (its deterministic policy pi on o~) | taken (the epsilon-greedy action it played)
    updates_per_rollout: int
    batch_size: int
    buffer_size: int
    target_update_every: int

    @property
    def team_ema(self) -> float:  # read by the shared value-decomposition learner
        return 1.0

    def validate(self, run, uses: str) -> None:
        """`uses`: the director the adversary needs (qmix or sdor)."""
        require(self.name == uses, f"adv.director.name: adv={run.adv.name} uses {uses!r}, got {self.name!r}")
        require_positive(self, "adv.director.", ("hidden_dim", "mixer_embed_dim", "hypernet_hidden", "lr", "lr_final", "grad_clip", "reward_scale", "eps_anneal_steps", "alpha_anneal_steps", "updates_per_rollout", "batch_size", "buffer_size", "target_update_every"))
        require_unit(self, "adv.director.", ("gamma", "td_lambda", "eps_start", "eps_end"))
        require(self.alpha_end > 0 and self.alpha_start >= self.alpha_end, f"adv.director.alpha_end: must be > 0 and <= alpha_start ({self.alpha_start}), got {self.alpha_end}")
        require_choice(self, "adv.director.", "value", ("logsumexp", "network"))
        require_choice(self, "adv.director.", "individual_alpha", ("shared", "weighted"))
        require(self.kappa >= 0, f"adv.director.kappa: must be >= 0, got {self.kappa}")
        require_choice(self, "adv.director.", "stor_action", ("greedy", "taken"))
        num_envs = run.alg.num_envs
        require(self.buffer_size % num_envs == 0, f"adv.director.buffer_size: must be a multiple of alg.num_envs ({num_envs}), got {self.buffer_size}")
        require(self.batch_size <= self.buffer_size, f"adv.director.batch_size: must not exceed adv.director.buffer_size ({self.buffer_size}), got {self.batch_size}")


@dataclass(frozen=True)
class DirectorAttackConfig:
    """PAAD and ATSA: a director and the targeted gradient attack that realises its targets."""

    name: str
    temperature: float  # the team's pi(.|o) = softmax(Q / temperature) the targeted attack descends
    steps: int  # the actor / STor: 1 = targeted FGSM (a step of size eps); > 1: targeted PGD
    step_size: Optional[float]  # per step; null = eps / steps
    director: DirectorConfig

    def validate(self, run) -> None:
        require_positive(self, "adv.", ("temperature", "steps"))
        require(self.step_size is None or self.step_size > 0, f"adv.step_size: must be > 0, got {self.step_size}")
        require(run.protocol.attack_prob > 0.0, f"protocol.attack_prob: a learned adversary learns from the episodes it attacks; must be > 0, got {run.protocol.attack_prob}")
        self.director.validate(run, DIRECTOR_OF[self.name])


DIRECTOR_OF = {"paad": "qmix", "atsa": "sdor", "rap": "qmix"}  # the director each adversary uses


@struct.dataclass
class DirectorItem:
    """One environment's rollout from the director's side."""

    seq: Sequence  # clean obs, avail, state, its previous targets, targets, reward -r, done, hidden
    team_action: jax.Array  # [T, N] the protagonist's action pi(o~) (ATSA's SDor-STor loss, `stor_action`)
    attacked: jax.Array  # [T] bool, the step's episode was attacked: only these steps are learned from


class QDirector:
    """PAAD's director: QMIX over target actions, epsilon-greedy in training, greedy in test."""

    def __init__(self, cfg, env, total_updates: int = 1):
        self.cfg = cfg
        self.vd = ValueDecomposition(cfg, env, total_updates // cfg.updates_per_rollout)

    def init(self, key):
        return self.vd.init(key)

    def initial_hidden(self, batch_shape):
        return {"q": self.vd.initial_hidden(batch_shape)}

    def epsilon(self, env_steps):
        c = self.cfg
        return linear_schedule(env_steps, c.eps_start, c.eps_end, c.eps_anneal_steps)

    def direct(self, params, hidden, obs, last, first, avail, key, train: bool, env_steps):
        h, q = self.vd.step_q(params["agent"], hidden["q"], obs, last, first)
        eps = self.epsilon(env_steps) if train else jnp.zeros(())
        return epsilon_greedy(key, q, avail, eps).astype(jnp.int32), {"q": h}

    def update(self, state, batch: DirectorItem, env_steps, key):
        return self.vd.update(state, batch.seq.replace(hidden=batch.seq.hidden["q"]), batch.attacked)


DIRECTORS = {"qmix": QDirector, "sdor": SoftFactorizedQ}


@ADVERSARIES.register("atsa", DirectorAttackConfig)
@ADVERSARIES.register("paad", DirectorAttackConfig)
class Director(ObservationAdversary):
    """A director + targeted gradient generator. adv_state: {"eps", "params" (the director's
    acting parameters), "steps" (env steps it has trained on)} and, when built for training
    (`layout` given), {"learner", "buffer"}."""

    learned = True

    def __init__(self, cfg, env, eps: float, layout: tuple[int, int, int] | None = None, learnable_items_only: bool = False):
        """`layout` = (num_envs, rollout_len, total_iterations) of the training run, if any.
        `learnable_items_only`: replay draws only items holding at least one learnable step
        (a RAP member owns ~1/K of the items, so a uniform draw would leave most of its batch
        masked). A lone director keeps the uniform draw: at attack_prob .8 only the items wholly
        inside clean episodes (under 1/5) carry nothing, and the measured PAAD and ATSA rows were
        trained with it."""
        super().__init__(cfg, env, eps)
        self.learnable_items_only = learnable_items_only
        d = cfg.director
        self.num_agents, self.num_actions, self.obs_dim, self.state_dim = env.num_agents, env.num_actions, env.obs_dim, env.state_dim
        self.layout = layout
        total_updates = (layout[2] if layout else 1) * d.updates_per_rollout
        self.learner = DIRECTORS[d.name](d, env, total_updates)

    # -- state --------------------------------------------------------------------------
    def init(self, key: jax.Array, eps=None) -> dict:
        state = super().init(key, eps)
        learner_state = self.learner.init(key)
        state.update(params=learner_state.params, steps=jnp.zeros((), jnp.int32))
        if self.layout is not None:
            state.update(learner=learner_state, buffer=replay.init(self._example_item(), self.cfg.director.buffer_size))
        return state

    def _example_item(self) -> DirectorItem:
        t, n = self.layout[1], self.num_agents
        seq = sequence.zeros(t, n, self.obs_dim, self.num_actions, self.state_dim, self.learner.initial_hidden((n,)))
        return DirectorItem(seq, jnp.zeros((t, n), jnp.int32), jnp.zeros((t,), bool))

    def initial_carry(self, num_envs: int) -> dict:
        return {"hidden": self.learner.initial_hidden((num_envs, self.num_agents)), "last": jnp.full((num_envs, self.num_agents), -1, jnp.int32)}

    # -- acting -------------------------------------------------------------------------
    def act(self, adv_state, carry, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False):
        """Director picks a^ from the clean obs; the targeted gradient attack pushes the team's
        softmax policy toward a^ inside B_eps(o) (ATSA eqs. 12-13 / PAAD's actor)."""
        last = jnp.where(view.first, -1, carry["last"])
        target, hidden = self.learner.direct(adv_state["params"], carry["hidden"], obs, last, view.first, view.avail, key, train, adv_state["steps"])
        seen = configured_pgd(self, adv_state, obs, view, target=target)
        return seen, {"hidden": hidden, "last": target}, {"target": target, "last": last}

    # -- learning -----------------------------------------------------------------------
    def update(self, adv_state: dict, records, carry0: dict, actor_end, index: jax.Array, env_steps: jax.Array, key: jax.Array):
        """Store the rollout from the director's side (clean observations, its targets, -r, which
        steps were attacked) and take `updates_per_rollout` gradient steps, learning from the
        attacked steps only (`protocol.attack_prob` < 1 leaves some episodes clean). Returns
        (adv_state, metrics); metrics["adv_dropped"] counts the steps dropped as non-finite."""
        d = self.cfg.director
        ts = actor_end.ts
        view = records.replace(obs=records.clean_obs, last_action=records.adv_out["last"], action=records.adv_out["target"], reward=-records.reward)
        final = {"obs": ts.obs, "avail": ts.avail, "state": ts.state, "first": ts.first, "last_action": jnp.where(ts.first[:, None], -1, actor_end.adv_carry["last"])}
        team_action = records.greedy if d.stor_action == "greedy" else records.action
        item = DirectorItem(from_steps(view, final, carry0["hidden"]), jnp.swapaxes(team_action, 0, 1), jnp.swapaxes(records.attacked, 0, 1))
        num_envs = records.reward.shape[1]
        slot, size = replay.ring_position(index, num_envs, d.buffer_size)
        buf = replay.write(adv_state["buffer"], item, slot)

        weights = jnp.any(buf.attacked, axis=1).astype(jnp.float32) if self.learnable_items_only else None

        def step(learner_state, k):
            k_sample, k_update = jax.random.split(k)
            return self.learner.update(learner_state, replay.sample(buf, k_sample, d.batch_size, size, weights), env_steps, k_update)

        learner_state, m = jax.lax.scan(step, adv_state["learner"], jax.random.split(key, d.updates_per_rollout))
        new = {**adv_state, "learner": learner_state, "params": learner_state.params, "buffer": buf, "steps": env_steps}
        return new, {"adv_loss": jnp.mean(m["loss"]), "adv_dropped": jnp.sum(m["dropped"])}
