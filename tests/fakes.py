"""Tiny deterministic environments with hand-checkable episodes, and helpers for the learner tests."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jarob.envs import MarlEnv, PerturbationSpec


class CountingEnv(MarlEnv):
    """Episodes of exactly `length` steps; step t (0-based) pays reward t + 1; the episode is won.

    obs of agent i = one-hot of the step counter (length + 1 slots); action 0 is unavailable for
    every agent so that masks matter.
    """

    has_win = True

    def __init__(self, length: int = 3, num_agents: int = 2, num_actions: int = 3):
        self.name = "counting"
        self.length = length
        self.num_agents = num_agents
        self.num_actions = num_actions
        self.obs_dim = length + 1
        self.state_dim = length + 1
        self.max_steps = length
        self.default_eps = 0.1
        self.perturbation = PerturbationSpec(
            mask=np.ones(self.obs_dim, bool),
            low=np.zeros(self.obs_dim, np.float32),
            high=np.ones(self.obs_dim, np.float32),
        )

    def _reset(self, key):
        return jnp.zeros((), jnp.int32)

    def _step(self, key, t, actions):
        reward = (t + 1).astype(jnp.float32)
        t = t + 1
        done = t >= self.length
        return t, reward, done, done

    def _view(self, t):
        onehot = jnp.eye(self.obs_dim)[t]
        obs = jnp.broadcast_to(onehot, (self.num_agents, self.obs_dim))
        avail = jnp.ones((self.num_agents, self.num_actions), bool).at[:, 0].set(False)
        return obs, avail, onehot


class ThresholdEnv(MarlEnv):
    """One-step episodes, won iff every agent takes action 1. Every agent sees obs = [0.5, 1.0];
    feature 0 is perturbable within [0, 1], feature 1 never is."""

    has_win = True

    def __init__(self, num_agents: int = 2):
        self.name = "threshold"
        self.num_agents = num_agents
        self.num_actions = 2
        self.obs_dim = 2
        self.state_dim = 1
        self.max_steps = 1
        self.default_eps = 0.25
        self.perturbation = PerturbationSpec(mask=np.array([True, False]), low=np.zeros(2, np.float32), high=np.ones(2, np.float32))

    def _reset(self, key):
        return jnp.zeros((), jnp.int32)

    def _step(self, key, t, actions):
        won = jnp.all(actions == 1)
        return t + 1, won.astype(jnp.float32), jnp.ones((), bool), won

    def _view(self, t):
        obs = jnp.broadcast_to(jnp.array([0.5, 1.0]), (self.num_agents, 2))
        return obs, jnp.ones((self.num_agents, 2), bool), jnp.zeros((1,))


class CrashEnv(ThresholdEnv):
    """ThresholdEnv whose episodes have no win: one ends in a crash unless every agent takes action 1."""

    has_win = False
    has_crash = True

    def __init__(self, num_agents: int = 2):
        super().__init__(num_agents)
        self.name = "crash"

    def _reset(self, key):
        return jnp.zeros((), jnp.int32), jnp.zeros((), bool)

    def _step(self, key, inner, actions):
        ok = jnp.all(actions == 1)
        return (inner[0] + 1, ~ok), ok.astype(jnp.float32), jnp.ones((), bool), jnp.zeros((), bool)

    def _view(self, inner):
        return super()._view(inner[0])

    def _crashed(self, inner):
        return inner[1]


class LinearTeam:
    """A memoryless 'learner' for attack and evaluator tests: Q_i = obs_i @ W + b."""

    def __init__(self, alg=None, env=None):
        pass

    def initial_hidden(self, batch_shape):
        return jnp.zeros(batch_shape + (1,))

    def step_q(self, params, hidden, obs, last_action, first):
        return hidden, obs @ params["w"] + params["b"]

    # the rest of the team-learner protocol (jarob.learners.base) the rollout uses
    def policy(self, params, hidden, obs, last_action, first):
        return self.step_q(params, hidden, obs, last_action, first)

    def greedy(self, scores, avail):
        from jarob.ops import masked_argmax

        return masked_argmax(scores, avail)

    def explore(self, key, scores, avail, eps):
        from jarob.ops import epsilon_greedy

        return epsilon_greedy(key, scores, avail, eps)

    def joint_value(self, team, chosen, state):
        return jnp.sum(chosen)

    def architecture(self):
        return ("linear",)


def stepped_log_pi(learner, params, seqs):
    """log pi [E, T, N, A] (float64) of a softmax-actor team along batch-major sequences, by stepping
    its acting policy (`learner.policy`, not the sequence unroll) from each stored context."""
    out = []
    for e in range(seqs.action.shape[0]):
        h, rows = seqs.hidden[e], []
        for t in range(seqs.action.shape[1]):
            h, logits = learner.policy({"agent": params["agent"]}, h, seqs.obs[e, t], seqs.last_action[e, t], seqs.first[e, t])
            masked = np.where(np.asarray(seqs.avail[e, t]), np.asarray(logits, np.float64), -np.inf)
            rows.append(masked - np.logaddexp.reduce(masked, axis=-1, keepdims=True))
        out.append(rows)
    return np.asarray(out)
