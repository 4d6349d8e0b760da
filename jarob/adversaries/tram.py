"""TRAM: training-time attacks on a policy-gradient team (tram_training_time_attack.txt).

One poisoned agent k (`adv.agent`) is adversarial at each step with probability f_A (`adv.f_a`):
it then samples its action from pi'_k = softmax(l_k + beta * delta^) in place of its learner's
choice, l_k its logits and delta^ a unit vector over its available actions; beta is the largest
value with KL(pi'_k || pi_k) <= KL^U (`adv.kl_max`), found by the binary search of the paper's
Algorithm 1 (appendix B; KL grows monotonically in beta, Lemma B.1). The team learns from what was
played as if it were its own exploration. The direction delta^ is

- `tram_random`: a uniformly random unit vector;
- `tram_variance` (section 3.2): Normalize(grad_delta tr(R) at delta = 0), tr(R) = sum rho A^2
  ||grad_theta log pi||^2 (eq. 6); with rho ~ the attacked policy (eq. 8, its first factor 1) and
  eqs. 9-10, per step and action a' of agent k: pi_k(a') (g(a') - sum_a pi_k(a) g(a)), g(a) =
  A_k(a)^2 ||grad_theta log pi_k(a|tau_k)||^2, the other agents' factor of eq. 9 being the same
  for every a' (dropped by the normalisation);
- `tram_j` (section 3.3): Normalize(-grad_delta J(theta^{t+1})), by eq. 13 with the previous
  update's policy gradient g_J: pi_k(a') (h(a') - sum_a pi_k(a) h(a)), h(a) = A_k(a)
  <g_J, grad_theta log pi_k(a|tau_k)>.

A_k(a) is the team's per-action advantage (DOP: k_k(s) (Q_k(a) - E_pi Q_k)), grad_theta log pi_k
the per-action gradient of the acting actor's log-probability at this step (its GRU context
held fixed), computed by jax.jacrev. Per chunk it logs the share of the poisoned agent's steps
that were adversarial, the mean KL(pi'_k || pi_k) of those steps and the stealth log-likelihood
of eq. 3, L = f_A sum pi'_k log pi_k + (1 - f_A) sum pi_k log pi_k, averaged over steps. It never
acts in an evaluation: greedy evaluations stay clean.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jarob.adversaries.base import ADVERSARIES, TrainingAdversary, TrainingView
from jarob.config import require, require_positive
from jarob.learners.actor_critic import log_policy


@dataclass(frozen=True)
class TRAMConfig:
    name: str
    agent: int  # the poisoned agent k
    f_a: float  # probability, per step, that agent k is adversarial
    kl_max: float  # KL^U: the bound on KL(pi'_k || pi_k)
    bsn1: int  # Algorithm 1: doublings of the search interval
    bsn2: int  # Algorithm 1: bisections after them (plus the doublings used)

    def validate(self, run) -> None:
        from jarob import envs
        from jarob.learners import LEARNERS

        require(0.0 <= self.f_a <= 1.0, f"adv.f_a: must lie in [0, 1], got {self.f_a}")
        require_positive(self, "adv.", ("kl_max", "bsn1", "bsn2"))
        n = envs.make(run.env.name).num_agents
        require(0 <= self.agent < n, f"adv.agent: must be an agent of {run.env.name} (0-{n - 1}), got {self.agent}")
        team = LEARNERS.get(run.alg.name)
        require(getattr(team, "samples_softmax", False), f"adv={self.name}: attacks how a policy-gradient team samples its actions; alg={run.alg.name} is not one (alg=dop, alg=mappo)")
        if self.name != "tram_random":
            require(getattr(team, "has_action_advantages", False), f"adv={self.name}: needs the team's per-action advantages, which alg={run.alg.name}'s critic does not give (alg=dop)")


def masked_kl(log_p: jax.Array, log_q: jax.Array, avail: jax.Array) -> jax.Array:
    """KL(p || q) over the available actions (last axis)."""
    return jnp.sum(jnp.where(avail, jnp.exp(log_p) * (log_p - log_q), 0.0), axis=-1)


def find_beta(logits: jax.Array, direction: jax.Array, avail: jax.Array, kl_max, bsn1: int, bsn2: int) -> jax.Array:
    """The paper's Algorithm 1: the largest beta (to the search's precision) with
    KL(softmax(l + beta d) || softmax(l)) <= kl_max. r doubles from 1 until the bound is broken
    (at most bsn1 times), then bsn2 + (doublings used) bisections of [0, r]; returns the left end."""
    log_pi = log_policy(logits, avail)

    def kl(beta):
        return masked_kl(log_policy(logits + beta * direction, avail), log_pi, avail)

    def double(i, carry):
        r, bsn, stopped = carry
        broken = kl(r) > kl_max
        stop = stopped | broken
        return jnp.where(stop, r, 2.0 * r), jnp.where(stopped, bsn, i), stop

    r, bsn, _ = jax.lax.fori_loop(0, bsn1, double, (jnp.ones(()), jnp.zeros((), jnp.int32), jnp.zeros((), bool)))

    def bisect(i, lr):
        lo, hi = lr
        m = 0.5 * (lo + hi)
        broken = kl(m) > kl_max
        active = i < bsn2 + bsn
        return jnp.where(active & ~broken, m, lo), jnp.where(active & broken, m, hi)

    lo, _ = jax.lax.fori_loop(0, bsn2 + bsn1, bisect, (jnp.zeros(()), r))
    return lo


def unit(v: jax.Array, avail: jax.Array) -> jax.Array:
    """v / ||v|| over the available actions (0 elsewhere; 0 where v vanishes there)."""
    v = jnp.where(avail, v, 0.0)
    norm = jnp.sqrt(jnp.sum(v * v))
    return jnp.where(norm > 0, v / jnp.maximum(norm, 1e-12), 0.0)


def steering(pi: jax.Array, values: jax.Array) -> jax.Array:
    """grad_delta sum_a pi'(a) values(a) at delta = 0 for pi' = softmax(l + delta) (eq. 10):
    pi(a') (values(a') - sum_a pi(a) values(a))."""
    return pi * (values - jnp.sum(pi * values))


@ADVERSARIES.register("tram_random", TRAMConfig)
@ADVERSARIES.register("tram_variance", TRAMConfig)
@ADVERSARIES.register("tram_j", TRAMConfig)
class TRAM(TrainingAdversary):
    """adv_state: {"eps" (unused), "f_a", "kl_max"}: the attack's budget lives in its state, so one
    compiled program serves every value of an f_A or KL^U sweep (vmapped; benchmarks/tram.py)."""

    stat_names = ("attack_rate", "attack_kl", "stealth_ll")

    def init(self, key: jax.Array, eps=None) -> dict:
        state = super().init(key, eps)
        state.update(f_a=jnp.asarray(self.cfg.f_a, jnp.float32), kl_max=jnp.asarray(self.cfg.kl_max, jnp.float32))
        return state

    def direction(self, view: TrainingView, key: jax.Array) -> jax.Array:
        """delta^ [A] of the poisoned agent at this step (module docstring)."""
        k, avail = self.cfg.agent, view.avail[self.cfg.agent]
        if self.cfg.name == "tram_random":
            return unit(jax.random.normal(key, avail.shape), avail)
        log_pi = view.log_pi(view.params)[k]
        # d log pi_k(a) / d theta for every action a: a pytree with a leading axis A.
        jac = jax.jacrev(lambda p: view.log_pi(p)[k])(view.params)
        advantage = jnp.where(avail, view.advantages[k], 0.0)
        if self.cfg.name == "tram_variance":
            sq_norm = sum(jnp.sum(jnp.square(j).reshape(j.shape[0], -1), axis=1) for j in jax.tree.leaves(jac))
            values = advantage**2 * sq_norm
        else:
            dots = sum(jnp.sum((j * g[None]).reshape(j.shape[0], -1), axis=1) for j, g in zip(jax.tree.leaves(jac), jax.tree.leaves(view.policy_grad)))
            values = -advantage * dots  # descend J: the negative of eq. 13's gradient
        return unit(steering(jnp.exp(log_pi), jnp.where(avail, values, 0.0)), avail)

    def act(self, adv_state, carry, actions: jax.Array, view: TrainingView, key: jax.Array, train: bool = True):
        """With probability f_A agent k plays a ~ softmax(l_k + beta delta^); records whether it
        did, the KL of pi'_k from pi_k and the step's stealth log-likelihood (eq. 3)."""
        c = self.cfg
        k_dir, k_coin, k_sample = jax.random.split(key, 3)
        logits, avail = view.scores[c.agent], view.avail[c.agent]
        delta = self.direction(view, k_dir)
        f_a = adv_state["f_a"]
        beta = find_beta(logits, delta, avail, adv_state["kl_max"], c.bsn1, c.bsn2)
        log_pi = log_policy(logits, avail)
        log_pi_adv = log_policy(logits + beta * delta, avail)
        attacked = jax.random.uniform(k_coin) < f_a
        sampled = jax.random.categorical(k_sample, log_pi_adv)
        played = actions.at[c.agent].set(jnp.where(attacked, sampled, actions[c.agent]))
        cross = jnp.sum(jnp.where(avail, jnp.exp(log_pi_adv) * log_pi, 0.0))
        neg_entropy = jnp.sum(jnp.where(avail, jnp.exp(log_pi) * log_pi, 0.0))
        out = {"attacked": attacked, "kl": masked_kl(log_pi_adv, log_pi, avail), "stealth": f_a * cross + (1.0 - f_a) * neg_entropy}
        return played, carry, out

    def rollout_stats(self, records) -> dict:
        out = records.adv_out
        hit = out["attacked"].astype(jnp.float32)
        steps = jnp.asarray(hit.size, jnp.float32)
        return {
            "attack_rate": (jnp.sum(hit), steps),
            "attack_kl": (jnp.sum(hit * out["kl"]), jnp.sum(hit)),
            "stealth_ll": (jnp.sum(out["stealth"]), steps),
        }
