"""The team's clean view (`protocol.clean_td`, `protocol.consistency`): what is stored, and the two loss terms."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fakes import CountingEnv

from jarob import adversaries
from jarob.config import ConfigError, adv_config, load_config
from jarob.learners.value_decomposition import ValueDecomposition
from jarob.networks import unroll_sequence
from jarob.rollout import collect, init_actor


def test_clean_view_is_stored_and_its_context_carries_across_rollouts():
    """Two rollouts of 4 steps in 5-step episodes, half the episodes attacked by random noise: the
    Sequences keep the environment's observations beside what the team saw; both agree, and so do
    both GRU contexts, in the episodes left alone; unrolling each view over a rollout reaches the
    context the next rollout starts from."""
    env = CountingEnv(length=5)
    learner = ValueDecomposition(load_config(["alg.hidden_dim=8"]).alg, env, clean_td=1.0)
    params = learner.acting_team(learner.init(jax.random.PRNGKey(0)))
    adv = adversaries.make(adv_config("rn"), env, 0.3)
    adv_state = adv.init(jax.random.PRNGKey(3))
    actor = init_actor(env, learner, jax.random.PRNGKey(1), 16, adv, clean_view=True)
    actor, seqs, rec, _ = collect(env, learner, params, actor, jax.random.PRNGKey(2), jnp.float32(0.5), 4, adv, adv_state, attack_prob=0.5)
    _, seqs2, rec2, _ = collect(env, learner, params, actor, jax.random.PRNGKey(4), jnp.float32(0.5), 4, adv, adv_state, attack_prob=0.5)

    np.testing.assert_array_equal(seqs.clean_obs[:, :4], np.swapaxes(rec.clean_obs, 0, 1))
    np.testing.assert_array_equal(seqs.clean_obs[:, 4], seqs2.clean_obs[:, 0])
    np.testing.assert_array_equal(seqs.obs[:, :4], np.swapaxes(rec.obs, 0, 1))
    attacked = np.asarray(rec.attacked).any(axis=0) | np.asarray(rec2.attacked).any(axis=0)  # [E]
    assert 0 < attacked.sum() < 16
    np.testing.assert_array_equal(seqs2.obs[~attacked], seqs2.clean_obs[~attacked])
    np.testing.assert_array_equal(seqs2.hidden[~attacked], seqs2.clean_hidden[~attacked])
    first = np.asarray(rec.attacked).any(axis=0)
    assert np.all(np.any(np.asarray(seqs.obs != seqs.clean_obs), axis=(1, 2, 3))[first])
    assert np.any(np.asarray(seqs2.clean_hidden != seqs2.hidden)[attacked])

    # The context before step T (the rollout's last view, before its episode reset) is the next start.
    seen = seqs.time_major()
    for view, start in ((seen.clean_view(), seqs2.clean_hidden), (seen, seqs2.hidden)):
        context = unroll_sequence(params["agent"], view.hidden, view, learner.num_actions, with_context=True)[1]
        np.testing.assert_allclose(context[-1], start, atol=1e-5)


def _clean_batch(alg, shift):
    """A time-major batch of 4 collected sequences (no adversary, the clean view kept), its clean
    observations moved by `shift` on every feature."""
    env = CountingEnv(length=3)
    learner = ValueDecomposition(load_config([f"alg={alg}", "alg.hidden_dim=8"]).alg, env, clean_td=0.5, consistency=2.0)
    ls = learner.init(jax.random.PRNGKey(0))
    actor = init_actor(env, learner, jax.random.PRNGKey(1), 4, clean_view=True)
    _, seqs, _, _ = collect(env, learner, learner.acting_team(ls), actor, jax.random.PRNGKey(2), jnp.float32(1.0), 5)
    return env, learner, ls, seqs.replace(clean_obs=seqs.clean_obs + shift).time_major()


@pytest.mark.parametrize("alg", ["qmix", "vdn"])
def test_clean_view_terms_vanish_when_the_team_saw_the_clean_view(alg):
    """Without an adversary both views coincide: the consistency D is 0 and the clean TD loss is
    the TD loss, so loss = (1 + clean_td) TD."""
    _, learner, ls, seq = _clean_batch(alg, 0.0)
    np.testing.assert_array_equal(seq.obs, seq.clean_obs)
    total, m = learner.loss(ls.params, ls.target_params, seq)
    assert float(m["consistency"]) == 0.0
    np.testing.assert_allclose(float(m["clean_td"]), float(m["loss"]), rtol=1e-6)
    np.testing.assert_allclose(float(total), 1.5 * float(m["loss"]), rtol=1e-6)


def test_consistency_holds_the_clean_utilities_constant_by_hand():
    """VDN (every dQ_tot/dQ_i = 1): D = mean over transitions of sum_i sum_a (Q_i(seen, a) -
    Q_i(clean, a))^2 over the available actions, and its gradient is that of the same sum with
    the clean utilities frozen at the current parameters."""
    env, learner, ls, seq = _clean_batch("vdn", 0.2)
    learner = ValueDecomposition(learner.cfg, env, consistency=1.0)
    params = ls.params
    q_clean = learner.unroll_q(params["agent"], seq.clean_view())[:-1]
    avail = np.asarray(seq.avail[:-1])

    def by_hand(agent):
        q_seen = learner.unroll_q(agent, seq)[:-1]
        return jnp.mean(jnp.sum(jnp.where(avail, (q_seen - q_clean) ** 2, 0.0), axis=(-1, -2)))

    def term(p):
        return learner.clean_view_terms(p, ls.target_params, seq, learner.unroll_q(p["agent"], seq))[0]

    d = float(by_hand(params["agent"]))
    assert d > 1e-4
    np.testing.assert_allclose(float(term(params)), d, rtol=1e-5)
    np.testing.assert_allclose(float(learner.loss(params, ls.target_params, seq)[1]["consistency"]), d, rtol=1e-5)
    g, g_hand = jax.grad(term)(params)["agent"], jax.grad(by_hand)(params["agent"])
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_hand)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_qmix_consistency_weights_are_constants_and_clean_td_reaches_the_mixer():
    """QMIX: the consistency term's weights (dQ_tot/dQ_i)^2 are constants (no gradient into the
    mixer), while the clean view's TD loss trains agent and mixer alike."""
    env, learner, ls, seq = _clean_batch("qmix", 0.2)

    def term(learner):
        return jax.grad(lambda p: learner.clean_view_terms(p, ls.target_params, seq, learner.unroll_q(p["agent"], seq))[0])(ls.params)

    largest = lambda tree: max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(tree))  # noqa: E731
    g = term(ValueDecomposition(learner.cfg, env, consistency=1.0))
    assert largest(g["agent"]) > 0 and largest(g["mixer"]) == 0
    g = term(ValueDecomposition(learner.cfg, env, clean_td=1.0))
    assert largest(g["agent"]) > 0 and largest(g["mixer"]) > 0


def test_trainer_keeps_the_clean_view_only_when_asked():
    """One jitted training iteration against random noise: the replay buffer holds the clean view
    when a clean-view term is on (and its losses are finite), and has no such leaves otherwise."""
    from jarob.trainer import Trainer

    small = ["adv=rn", "alg.num_envs=2", "alg.rollout_len=4", "alg.hidden_dim=16", "alg.buffer_size=4", "alg.batch_size=2", "total_steps=64"]
    tr = Trainer(load_config([*small, "protocol.clean_td=1", "protocol.consistency=1"]))
    state, sums = jax.jit(tr.iteration)(tr.init(jax.random.PRNGKey(0)), jnp.int32(0))
    buf = state.learner.buffer
    assert buf.clean_obs.shape == buf.obs.shape and buf.clean_hidden.shape == buf.hidden.shape
    assert np.any(np.asarray(buf.obs[:2] != buf.clean_obs[:2]))
    assert np.isfinite(float(sums["loss"])) and float(sums["reg_loss"]) > 0
    plain = Trainer(load_config(small))
    assert plain.init(jax.random.PRNGKey(0)).learner.buffer.clean_obs is None
    assert len(jax.tree.leaves(plain.init(jax.random.PRNGKey(0)))) == len(jax.tree.leaves(tr.init(jax.random.PRNGKey(0)))) - 3


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["protocol.clean_td=1"], "protocol.clean_td"),  # adv=none: no other view
        (["adv=atsa", "protocol.clean_td=-1"], "protocol.clean_td"),
        (["adv=rn", "protocol.consistency=-0.5"], "protocol.consistency"),
    ],
)
def test_clean_view_config_errors(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides)
