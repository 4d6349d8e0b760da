"""Bootstrapped targets for value-decomposition Q-learning."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def lambda_returns(
    rewards: jax.Array, terminal: jax.Array, next_values: jax.Array, gamma: float, lam: float, next_bonus: jax.Array | None = None
) -> jax.Array:
    """Q(lambda) targets along the time axis (axis 0), computed backwards:

        G_t = r_t + gamma * (1 - d_t) * [(1 - lam) * V_{t+1} + lam * (G_{t+1} + b_{t+1})],
        G_{T-1} = r_{T-1} + gamma * (1 - d_{T-1}) * V_T,

    where V_{t+1} = next_values[t] is the target network's value of the step after t and
    d_t = terminal[t] says that step t *itself* ended its episode. Masking with the current
    step's flag is what stops bootstrapping across an episode end (DESIGN.md section 8: public
    JAX baselines mask with the previous step's flag). lam = 0 gives one-step TD targets.

    `next_bonus` [T, ...] (optional) is added to the continued return: the lam branch reads
    G_{t+1} + b_{t+1} with b_{t+1} = next_bonus[t]. Soft Q(lambda) passes the entropy bonus
    -alpha log pi(a_{t+1}) of the stored next action, which G_{t+1} (a return *after* taking
    a_{t+1}) does not hold; next_values then carry the bonus of their own sampled action.
    """
    not_done = 1.0 - terminal.astype(rewards.dtype)
    bonus = jnp.zeros_like(next_values) if next_bonus is None else next_bonus
    last = rewards[-1] + gamma * not_done[-1] * next_values[-1]

    def step(g_next, inp):
        r, nd, v_next, b_next = inp
        g = r + gamma * nd * ((1.0 - lam) * v_next + lam * (g_next + b_next))
        return g, g

    _, gs = jax.lax.scan(step, last, (rewards[:-1], not_done[:-1], next_values[:-1], bonus[:-1]), reverse=True)
    return jnp.concatenate([gs, last[None]], axis=0)
