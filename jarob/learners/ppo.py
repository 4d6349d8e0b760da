"""Proximal policy optimisation pieces, shared by MAPPO's team (`jarob.learners.mappo`) and ATLA's
adversary (`jarob.adversaries.atla`): the settings, GAE, the clipped objectives, the centralized
critic and the epochs-of-minibatches update loop (which DOP's on-policy updates use too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jarob.config import require, require_positive, require_unit
from jarob.learners.optim import keep_if_finite
from jarob.learners.targets import lambda_returns
from jarob.ops import weighted_mean


@dataclass(frozen=True)
class PPOSettings:
    """What every PPO learner of jarob is set by (its subclasses add their networks' settings)."""

    lr: float
    lr_final: float
    grad_clip: float
    gamma: float
    gae_lambda: float
    reward_scale: float  # rewards are multiplied by this before GAE
    clip: float  # PPO ratio clip
    epochs: int  # passes over each rollout
    minibatches: int  # per pass
    value_coef: float
    entropy_coef: float

    def validate_ppo(self, prefix: str) -> None:
        """Ranges of the PPO settings; `prefix` names their config node ("alg.", "adv.ppo.")."""
        require_positive(self, prefix, ("lr", "lr_final", "grad_clip", "reward_scale", "clip", "epochs", "minibatches"))
        require_unit(self, prefix, ("gamma", "gae_lambda"))
        for k in ("value_coef", "entropy_coef"):
            require(getattr(self, k) >= 0, f"{prefix}{k}: must be >= 0, got {getattr(self, k)}")


def gae(rewards: jax.Array, values: jax.Array, dones: jax.Array, last_value: jax.Array, gamma: float, lam: float):
    """Generalised advantage estimates and value targets along time (leading axis).

    rewards, values, dones [T, ...]; last_value [...] = V of the state after the last step.
    A_t = delta_t + gamma lam (1 - d_t) A_{t+1}, delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t
    (Schulman et al. 2016, eq. 16); an episode end (d_t) cuts both. A + V is the lambda-return
    of V, so A is computed as `lambda_returns` - V. Returns (A, A + V)."""
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    targets = lambda_returns(rewards, dones, next_values, gamma, lam)
    return targets - values, targets


def normalize(x: jax.Array, weights: jax.Array) -> jax.Array:
    """(x - mean) / std over the entries with weight 1 (weights broadcast like `weighted_mean`)."""
    mean = weighted_mean(x, weights)
    std = jnp.sqrt(weighted_mean(jnp.square(x - mean), weights))
    return (x - mean) / (std + 1e-8)


def clipped_surrogate(log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, clip: float, weights: jax.Array) -> jax.Array:
    """The PPO-clip loss (Schulman et al. 2017, eq. 7, negated to be minimised):
    -mean min(rho A, clip(rho, 1 - c, 1 + c) A), rho = exp(log_prob - old_log_prob)."""
    ratio = jnp.exp(log_prob - old_log_prob)
    surrogate = jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantages)
    return -weighted_mean(surrogate, weights)


def value_loss(values: jax.Array, targets: jax.Array, weights=None, old_values=None, clip: float = 0.0) -> jax.Array:
    """0.5 mean (V - G)^2; with `old_values` and clip > 0 PPO's clipped form (MAPPO, Yu et al.
    2022, appendix A): 0.5 mean max((V - G)^2, (V_old + clip(V - V_old, -c, c) - G)^2)."""
    error = jnp.square(values - targets)
    if old_values is not None and clip > 0:
        error = jnp.maximum(error, jnp.square(old_values + jnp.clip(values - old_values, -clip, clip) - targets))
    return 0.5 * weighted_mean(error, weights)


class Critic(nn.Module):
    """A centralized value V(s) [...] of the world state: two tanh layers."""

    hidden_dim: int

    @nn.compact
    def __call__(self, state: jax.Array) -> jax.Array:
        h = nn.tanh(nn.Dense(self.hidden_dim)(state))
        h = nn.tanh(nn.Dense(self.hidden_dim)(h))
        return nn.Dense(1)(h)[..., 0]


def minibatch_epochs(loss: Callable, tx: optax.GradientTransformation, params, opt_state, data, epochs: int, minibatches: int, key: jax.Array, keep_grads: bool = False):
    """`epochs` passes over `data` (a pytree whose leaves share a leading axis of n items: env
    steps, or whole sequences for a recurrent policy), each a fresh permutation cut into
    `minibatches` minibatches, one gradient step of `loss(params, minibatch) -> (loss, metrics)`
    on each. A step that would leave a non-finite parameter or moment is dropped
    (`keep_if_finite`). Returns (params, opt_state, metrics [epochs, minibatches] with "loss",
    "grad_norm", "dropped" and, `keep_grads`, "grads": the mean gradient of the steps, unstacked)."""
    n = jax.tree.leaves(data)[0].shape[0]

    def minibatch(carry, batch):
        params, opt = carry
        (value, m), grads = jax.value_and_grad(loss, has_aux=True)(params, batch)
        updates, new_opt = tx.update(grads, opt, params)
        (params, opt), dropped = keep_if_finite((optax.apply_updates(params, updates), new_opt), (params, opt))
        kept = {"grads": grads} if keep_grads else {}
        return (params, opt), {"loss": value, "grad_norm": optax.tree.norm(grads), "dropped": dropped, **kept, **m}

    def epoch(carry, k):
        order = jax.random.permutation(k, n)
        batches = jax.tree.map(lambda x: x[order].reshape((minibatches, n // minibatches) + x.shape[1:]), data)
        return jax.lax.scan(minibatch, carry, batches)

    (params, opt_state), metrics = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))
    if keep_grads:
        metrics["grads"] = jax.tree.map(lambda g: jnp.mean(g, axis=(0, 1)), metrics["grads"])
    return params, opt_state, metrics
