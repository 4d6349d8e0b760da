"""Optimisation pieces shared by the Q-learners (the team's VDN/QMIX, PAAD's director, ATSA's SDor)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def clipped_adam(cfg, total_updates: int) -> optax.GradientTransformation:
    """Adam after global-norm clipping (`cfg.grad_clip`), its learning rate linear from `cfg.lr`
    to `cfg.lr_final` over `total_updates` gradient steps."""
    lr = optax.linear_schedule(cfg.lr, cfg.lr_final, max(1, total_updates))
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.adam(lr))


def keep_if_finite(new, old):
    """(`new`, 0.) if every floating leaf of the pytree `new` is finite, else (`old`, 1.): a gradient
    step that would leave a non-finite parameter or optimiser moment is dropped whole, so one
    overflowing gradient cannot turn a run into NaNs. Where every step is finite it changes nothing."""
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(new) if jnp.issubdtype(x.dtype, jnp.inexact)]))
    return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old), 1.0 - finite.astype(jnp.float32)


def hard_target_update(target_params, params, updates: jax.Array, every: int):
    """The target parameters after gradient step number `updates`: a copy of `params` every
    `every` steps, unchanged otherwise."""
    copy = updates % every == 0
    return jax.tree.map(lambda t, p: jnp.where(copy, p, t), target_params, params)
