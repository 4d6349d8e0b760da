"""Adversarial regularizers of the team's utilities, added to its TD loss (DESIGN.md section 4).

Both act on one step of the recurrent agent: Q_i(h_i, o~_i) with h_i the hidden state the stored
sequence reaches before that step (held constant), so o~ is a perturbation of that step's
observation only. Each R is a sum over agents, averaged over the stored transitions (per sample,
not on a batch sum).

- PR (`qmix_state_adversarial_robustness.txt` eqs. 4-6, SA-DQN's hinge):
      R = sum_i max(max_{a != a*_i} Q_i(o~_i, a) - Q_i(o~_i, a*_i), -c),
  a*_i the greedy available action on the clean o_i and o~ the point of B_eps(o) that K signed
  gradient steps find for the same margin (o~ is then a constant). loss = TD + mu R.
- PR-REP: PR whose mu ramps from 0 to its maximum `cycles` times over training.
- ERNIE (`ernie_adversarial_regularization.txt` eqs. 2-4): R = D(Q(o + delta^K), Q(o)), D the
  squared l2 distance over the available actions (`l2`; the paper's D for Q-learning is an l_p
  norm, and its own Q regularizer of section 4.4 is this sum over actions of squared l2
  differences; squaring leaves the normalised ascent's path unchanged) or the KL
  divergence of the greedy policy's softmax relaxations (its D for stochastic policies, `kl`: blind
  to a shift of every action's value, so it penalizes changes of the action ranking, not of the
  state's value), or `mixer_l2`: the l2 distance with agent i's term weighted by
  (dQ_tot/dQ_i)^2 at the stored transition (held constant), i.e. measured in units of the team's
  value. QMIX's utilities have no scale of their own (Q_i * c with the mixer's first weights / c
  is the same Q_tot), so plain l2 can be met by shrinking every Q_i, action gaps included, at no
  TD cost; the weighted distance cannot. For VDN the weights are 1 and it is `l2`.
  delta^K from K projected gradient-ascent steps
  on D from a uniform random start in B_eps (D's gradient vanishes at delta = 0). Each step moves
  along grad / max|grad| (a differentiable l_inf-steepest direction, unlike sign()). Plain ERNIE
  holds delta^K constant; Stackelberg ERNIE differentiates through the K steps (eq. 4: the
  leader-follower term d delta^K / d theta). loss = TD + lambda R.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import jax
import jax.numpy as jnp

from jarob.ascent import sign_ascent
from jarob.config import require, require_choice
from jarob.ops import NEG_INF, mask_logits, masked_argmax, take
from jarob.registry import Registry

REGULARIZERS = Registry("reg", ())  # filled below: none, pr, pr_rep, ernie


@dataclass(frozen=True)
class RegConfig:
    """An adversarial regularizer added to the team's TD loss: loss = TD + weight(t) * R."""

    name: str  # none | pr | pr_rep | ernie
    weight: float  # mu (PR, PR-REP: its maximum) or lambda (ERNIE)
    schedule: str  # constant | step (0 before start_frac of training, weight after) | repeat (0 -> weight, `cycles` times)
    start_frac: float  # step: the share of training before the regularizer starts
    cycles: int  # repeat: how many ramps
    hinge_c: float  # PR: the hinge floor c
    steps: int  # K: ascent steps that find the perturbation
    step_size: Optional[float]  # per step; null = 2.5 eps / steps
    stackelberg: bool  # ERNIE: differentiate through the K ascent steps (eq. 4); false = plain ERNIE
    unroll: Optional[int]  # ERNIE Stackelberg: differentiate through the last `unroll` of the K steps only; null = all K
    distance: str  # ERNIE's D: l2 (squared, on the utilities) | mixer_l2 (l2 weighted by (dQ_tot/dQ_i)^2) | kl (of their softmax policies)
    temperature: float  # ERNIE kl: the softmax temperature T
    eps: Optional[float]  # the ball's radius; null = env.eps (the env's default budget)

    def validate(self, run) -> None:
        require(self.weight >= 0, f"reg.weight: must be >= 0, got {self.weight}")
        require_choice(self, "reg.", "schedule", ("constant", "step", "repeat"))
        require(0.0 <= self.start_frac <= 1.0, f"reg.start_frac: must lie in [0, 1], got {self.start_frac}")
        require(self.cycles > 0, f"reg.cycles: must be > 0, got {self.cycles}")
        require(self.hinge_c > 0, f"reg.hinge_c: must be > 0, got {self.hinge_c}")
        require(self.steps > 0, f"reg.steps: must be > 0, got {self.steps}")
        require(self.step_size is None or self.step_size > 0, f"reg.step_size: must be > 0, got {self.step_size}")
        require(self.unroll is None or 1 <= self.unroll <= self.steps, f"reg.unroll: must lie in [1, reg.steps = {self.steps}] or be null, got {self.unroll}")
        require(self.eps is None or self.eps > 0, f"reg.eps: must be > 0, got {self.eps}")
        require_choice(self, "reg.", "distance", ("l2", "mixer_l2", "kl"))
        require(self.temperature > 0, f"reg.temperature: must be > 0, got {self.temperature}")


for _name in ("none", "pr", "pr_rep", "ernie"):  # PR and PR-REP differ only in their schedule
    REGULARIZERS.register(_name, RegConfig)(RegConfig)


def regularizer_weight(cfg, frac: jax.Array) -> jax.Array:
    """mu (or lambda) at training progress frac in [0, 1]: `constant` = weight; `step` = 0 before
    start_frac, weight after (PR); `repeat` = a ramp 0 -> weight repeated `cycles` times (PR-REP)."""
    if cfg.schedule == "step":
        return jnp.where(frac >= cfg.start_frac, cfg.weight, 0.0)
    if cfg.schedule == "repeat":
        return cfg.weight * jnp.mod(frac * cfg.cycles, 1.0)
    return jnp.asarray(cfg.weight, jnp.float32)


def hinge_margin(q: jax.Array, avail: jax.Array, best: jax.Array, c: float) -> jax.Array:
    """max(max_{a != best, available} Q(a) - Q(best), -c) per agent [...] (PR eq. 5's summand);
    -c when no other action is available."""
    others = avail & (jnp.arange(q.shape[-1]) != best[..., None])
    runner_up = jnp.max(jnp.where(others, q, NEG_INF), axis=-1)
    return jnp.maximum(runner_up - take(q, best), -c)


def pr_regularizer(q_fn, obs: jax.Array, avail: jax.Array, project, *, c: float, steps: int, step_size) -> jax.Array:
    """PR's R per sample [...] (eq. 5): the summed hinge margins at o~ (found by `steps` signed
    ascent steps on the margin inside the ball, `project(clean, x)`; gradient stopped), with a*
    greedy on the clean obs [..., N, O]. `q_fn(obs) -> Q [..., N, A]`. The ascent climbs the
    clamped hinge, so an agent whose margin starts below -c has a zero gradient and keeps its
    clean observation (R = -c for it even where a perturbation could lift the margin above -c)."""
    best = masked_argmax(jax.lax.stop_gradient(q_fn(obs)), avail)

    def margin(x):
        return jnp.sum(hinge_margin(q_fn(x), avail, best, c))

    adv = jax.lax.stop_gradient(sign_ascent(margin, obs, project, steps=steps, step_size=step_size))
    return jnp.sum(hinge_margin(q_fn(adv), avail, best, c), axis=-1)


def l2_distance(q_perturbed: jax.Array, q_clean: jax.Array, avail: jax.Array) -> jax.Array:
    """ERNIE's D for Q-learning per agent [...], the squared l2 norm (the paper's D is an l_p norm;
    its mean-field R^Q_W of section 4.4 sums these squares over actions):
    sum over available a of (Q(o + delta, a) - Q(o, a))^2."""
    return jnp.sum(jnp.where(avail, (q_perturbed - q_clean) ** 2, 0.0), axis=-1)


def kl_distance(q_perturbed: jax.Array, q_clean: jax.Array, avail: jax.Array, temperature: float) -> jax.Array:
    """ERNIE's D for stochastic policies per agent [...]: KL(softmax(Q(o) / T) || softmax(Q(o + delta) / T))
    over the available actions."""
    log_p = jax.nn.log_softmax(mask_logits(q_clean / temperature, avail), axis=-1)
    log_q = jax.nn.log_softmax(mask_logits(q_perturbed / temperature, avail), axis=-1)
    return jnp.sum(jnp.where(avail, jnp.exp(log_p) * (log_p - log_q), 0.0), axis=-1)


def ernie_distance(kind: str, temperature: float = 1.0):
    """The per-agent D of `reg.distance` (`l2` | `mixer_l2` | `kl` at `reg.temperature`), as
    D(q_perturbed, q_clean, avail); `mixer_l2`'s weights are applied by `ernie_regularizer`."""
    if kind in ("l2", "mixer_l2"):
        return l2_distance
    return functools.partial(kl_distance, temperature=temperature)


NORMALISERS = ("max", "max_held", "none")


def ernie_ascent_step(q_fn, obs: jax.Array, q_clean: jax.Array, avail: jax.Array, project, mask, x: jax.Array, *, step_size, distance=l2_distance, normaliser: str = "max") -> tuple[jax.Array, jax.Array]:
    """One step of ERNIE's ascent (eq. 4): (project(obs, x + step_size * g / max|g|), max|g|),
    g = grad_x sum D(Q(x), q_clean) (D = `distance`), max|g| [..., N, 1] per agent's observation over
    the perturbable features `mask` [O] (at least 1e-12). `normaliser` (diagnostics of the
    Stackelberg derivative; the learner uses "max"): "max_held" takes the same step with max|g|
    held constant in the derivative, "none" the unnormalised step x + step_size * g (the paper's
    eq. 4 as written)."""
    g = jax.grad(lambda y: jnp.sum(distance(q_fn(y), q_clean, avail)))(x)
    scale = jnp.maximum(jnp.max(jnp.where(mask, jnp.abs(g), 0.0), axis=-1, keepdims=True), 1e-12)
    divisor = {"max": scale, "max_held": jax.lax.stop_gradient(scale), "none": 1.0}[normaliser]
    return project(obs, x + step_size * g / divisor), scale


def ernie_perturbation(q_fn, obs: jax.Array, q_clean: jax.Array, avail: jax.Array, project, start: jax.Array, mask, *, steps: int, step_size, distance=l2_distance, normaliser: str = "max", unroll: int | None = None) -> jax.Array:
    """o + delta^K (ERNIE eq. 4): `steps` of `ernie_ascent_step` from `start`, q_clean = Q(obs).
    Differentiable in the parameters behind `q_fn` and q_clean (the Stackelberg gradient flows
    through it): through every step (`unroll` None), or through the last `unroll` steps only
    (truncated backpropagation: delta^(K - unroll) is held constant; 0 holds delta^K constant)."""

    def body(_, x):
        return ernie_ascent_step(q_fn, obs, q_clean, avail, project, mask, x, step_size=step_size, distance=distance, normaliser=normaliser)[0]

    if unroll is None or unroll >= steps:
        return jax.lax.fori_loop(0, steps, body, start)
    held = jax.lax.stop_gradient(jax.lax.fori_loop(0, steps - unroll, body, start))
    return jax.lax.fori_loop(0, unroll, body, held)


def ernie_regularizer(q_fn, obs: jax.Array, avail: jax.Array, project, start: jax.Array, mask, *, steps: int, step_size, stackelberg: bool, distance=l2_distance, agent_weight=None, normaliser: str = "max", unroll: int | None = None) -> jax.Array:
    """ERNIE's R per sample [...] (eq. 2 / eq. 4): sum over agents of w_i D(Q(o + delta^K), Q(o)),
    w_i = `agent_weight` [..., N] (default 1; constants: `mixer_l2` passes (dQ_tot/dQ_i)^2);
    `stackelberg` keeps the gradient through delta^K (through its last `unroll` steps when given),
    otherwise it is held constant. Each agent's perturbation moves only its own D, so the weights
    leave the ascent's (normalised) path as it is."""
    q_clean = q_fn(obs)
    x = ernie_perturbation(q_fn, obs, q_clean, avail, project, start, mask, steps=steps, step_size=step_size, distance=distance, normaliser=normaliser, unroll=unroll)
    if not stackelberg:
        x = jax.lax.stop_gradient(x)
    d = distance(q_fn(x), q_clean, avail)
    if agent_weight is not None:
        d = jax.lax.stop_gradient(agent_weight) * d
    return jnp.sum(d, axis=-1)
