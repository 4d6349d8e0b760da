"""The team-learner seam (DESIGN.md section 3): what the trainer, the rollout, the evaluator, the
attacks and the checkpoints ask of a team, whatever its family.

A learner is a class of pure functions over pytrees; it holds static configuration only. It
registers itself with its own config dataclass (`@LEARNERS.register("qmix", QMixConfig)`), and
`alg=<name>` resolves through `LEARNERS`:

    init(key, learning)             -> state: parameters, optimiser, memory (a replay buffer when
                                       `learning`; a frozen victim needs none)
    team(state)                     -> the team: the pytree saved as team.msgpack, evaluated and
                                       attacked (`acting_team`: what acts while it learns)
    with_team(state, team)          -> state acting as `team` (attack mode: a frozen victim)
    initial_hidden(batch_shape)     -> the recurrent carry of each agent before an episode
    policy(team, carry, obs, last_action, first) -> (carry, scores [..., N, A]): the
                                       differentiable policy view that gradient attacks and
                                       directors use (utilities or logits of the discrete actions)
    explore(key, scores, avail, exploration) / greedy(scores, avail) -> actions [..., N]
    exploration(env_steps)          -> the exploration level of the acting schedule
    joint_value(team, chosen, state) -> the team's joint value of the chosen utilities [N] at
                                       world state [S] (None where the family has none)
    action_advantages(team, obs, state, scores, avail) -> per-action advantages [N, A] from the
                                       acting team's critic (None where it has none; TRAM)
    learn(state, sequences, iteration, key) -> (state, metrics): store one rollout (Sequences [E,
                                       ...]) and learn from it
"""

from __future__ import annotations

import jax

from jarob.ops import masked_argmax
from jarob.registry import Registry

LEARNERS = Registry("alg", ("jarob.learners",))

# The per-chunk training metrics every learner reports (0 where a family has no such quantity):
# the loss, its value estimate (Q_tot for value decomposition), the gradient norm, the
# regularizer term and the gradient steps dropped as non-finite.
METRICS = ("loss", "q_tot", "grad_norm", "reg", "dropped")


class TeamLearner:
    """Base class of team learners: the defaults every discrete family shares."""

    discrete = True
    uses_clean_view = False  # the stored sequences keep the clean view (adversarial training terms)

    def greedy(self, scores: jax.Array, avail: jax.Array) -> jax.Array:
        """The deterministic policy: the best-scored available action of each agent."""
        return masked_argmax(scores, avail)

    def joint_value(self, team, chosen: jax.Array, state: jax.Array):
        """The team's joint value of per-agent chosen utilities; None: the family has none."""
        return None

    def action_advantages(self, team, obs: jax.Array, state: jax.Array, scores: jax.Array, avail: jax.Array):
        """Per-action advantages [N, A] of each agent at one step (obs [N, O], state [S], its
        policy view scores [N, A]) from the acting team's critic; None: the family has none."""
        return None

    @staticmethod
    def team_from_saved(saved):
        """The team pytree from a team.msgpack (a learner may read older layouts here)."""
        return saved

    def architecture(self) -> tuple:
        """What a compiled evaluation program depends on: teams with equal architectures are
        evaluated in one vmapped program."""
        raise NotImplementedError


def make(cfg, env, **kwargs) -> TeamLearner:
    """The learner registered as `cfg.name`, built from its config `cfg` on `env`."""
    return LEARNERS.get(cfg.name)(cfg, env, **kwargs)
