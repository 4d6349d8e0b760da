"""The action channel: malicious agents (ERNIE section 5) hijack one agent now and then."""

import jax
import jax.numpy as jnp
import numpy as np

from fakes import LinearTeam, ThresholdEnv
from jarob.adversaries import ADVERSARIES, ActionView
from jarob.adversaries.malicious import Malicious, MaliciousConfig, worst_action
from jarob.rollout import evaluate


def test_registered_on_the_action_channel():
    assert ADVERSARIES.get("malicious") is Malicious and Malicious.channel == "action" and not Malicious.learned


SCORES = jnp.array([[1.0, 2.0, 3.0], [-1.0, 5.0, 0.0]])
ALL = jnp.ones((2, 3), bool)


def test_worst_action_minimises_the_joint_value_given_teammates():
    chosen = jnp.array([2, 1])
    # Q_tot(u) = (u_0 - 2)^2 + u_1: agent 0's worst is its middle action (value 0), not its lowest utility.
    view = ActionView(SCORES, ALL, jnp.zeros(1), jnp.bool_(False), lambda u: (u[0] - 2.0) ** 2 + u[1])
    assert int(worst_action(view, chosen, jnp.int32(0))) == 1
    # Unavailable actions are never played: without action 1, actions 0 and 2 tie at 1; the first wins.
    view = ActionView(SCORES, ALL.at[0, 1].set(False), jnp.zeros(1), jnp.bool_(False), view.joint_value)
    assert int(worst_action(view, chosen, jnp.int32(0))) == 0
    # The teammates' chosen utilities enter: Q_tot = u_0 * u_1 with agent 1 hijacked and u_0 = 3.
    view = ActionView(SCORES, ALL, jnp.zeros(1), jnp.bool_(False), lambda u: u[0] * u[1])
    assert int(worst_action(view, chosen, jnp.int32(1))) == 0
    # Without a joint value: the agent's own lowest available utility.
    view = ActionView(SCORES, ALL.at[1, 0].set(False), jnp.zeros(1), jnp.bool_(False), None)
    assert int(worst_action(view, chosen, jnp.int32(1))) == 2


def _malicious(rate, mode="worst"):
    return Malicious(MaliciousConfig("malicious", rate, mode), ThresholdEnv(), 0.0)


def test_malicious_hijacks_one_agent_with_a_choice_at_its_rate():
    avail = jnp.ones((3, 3), bool).at[1, 1:].set(False)  # agent 1 has one action left: never hijacked
    view = ActionView(jnp.arange(9.0).reshape(3, 3), avail, jnp.zeros(1), jnp.bool_(False), None)
    chosen = jnp.array([2, 0, 2])
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)

    def run(adv):
        played, _, out = jax.vmap(lambda k: adv.act({}, {}, chosen, view, k))(keys)
        return np.asarray(played), np.asarray(out["hijacked"])

    played, hijacked = run(_malicious(0.0))
    assert (played == np.asarray(chosen)).all() and (hijacked == -1).all()
    played, hijacked = run(_malicious(1.0))
    assert set(hijacked) == {0, 2}  # uniformly among the agents with a choice
    assert 0.45 < np.mean(hijacked == 0) < 0.55
    changed = played != np.asarray(chosen)
    assert (changed.sum(axis=1) == 1).all() and (played[changed] == 0).all()  # the lowest utility
    played, hijacked = run(_malicious(0.05, "random"))
    assert 0.04 < np.mean(hijacked >= 0) < 0.065


def test_action_channel_in_the_rollout():
    """ThresholdEnv is won iff every agent plays 1, which the linear team prefers: a hijacked agent
    plays its worst action 0 and loses the episode; the environment sees the played actions."""
    env = ThresholdEnv()
    team, params = LinearTeam(), {"w": jnp.zeros((2, 2)), "b": jnp.array([0.0, 1.0])}
    key = jax.random.PRNGKey(0)
    clean = evaluate(env, team, params, key, 64)
    always = evaluate(env, team, params, key, 64, _malicious(1.0), {})
    sometimes = evaluate(env, team, params, key, 400, _malicious(0.3), {})
    assert float(jnp.mean(clean.won)) == 1.0 and float(jnp.mean(always.won)) == 0.0
    assert 0.6 < float(jnp.mean(sometimes.won)) < 0.8


def test_training_against_malicious_stores_the_played_actions():
    """`jarob.train adv=malicious` on smax_3m: with rate 1 and a greedy team, the team's buffer holds
    the played actions, which differ from its greedy choice in exactly one agent with a choice per
    step, and there the hijacked agent played its lowest available utility (QMIX is monotonic in
    each utility, so the worst action for Q_tot is that one). The greedy choice is recomputed from
    the stored sequence, so the last-action inputs are the played actions too."""
    from jarob.config import load_config
    from jarob.ops import masked_argmax
    from jarob.trainer import Trainer

    cfg = load_config(["adv=malicious", "adv.rate=1", "alg.eps_start=0", "alg.eps_end=0", "alg.num_envs=2", "alg.rollout_len=8", "alg.hidden_dim=16", "alg.buffer_size=8", "alg.batch_size=8", "total_steps=64"])
    tr = Trainer(cfg)
    state = jax.jit(tr.init)(jax.random.PRNGKey(0))
    new, _ = jax.jit(tr.iteration)(state, jnp.int32(0))
    seq = jax.tree.map(lambda x: jnp.asarray(x)[: cfg.alg.num_envs], new.learner.buffer).time_major()
    q = tr.learner.unroll_q(state.learner.params["agent"], seq)[:-1]  # [T, E, N, A]
    avail = seq.avail[:-1]
    greedy, lowest = np.asarray(masked_argmax(q, avail)), np.asarray(masked_argmax(-q, avail))
    played = np.asarray(seq.action)
    choice = np.asarray(avail.sum(-1) > 1)  # [T, E, N]
    differs = played != greedy
    assert (differs.sum(-1) == choice.any(-1)).all()  # one hijacked agent per step where one has a choice
    assert choice.any(-1).mean() > 0.9 and (played[differs] == lowest[differs]).all()
