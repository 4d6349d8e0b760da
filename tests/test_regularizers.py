"""PR, PR-REP and ERNIE: hand-computed values on tiny utilities, the Stackelberg gradient against
finite differences, the schedules, and the regularized team learner."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jarob.config import ConfigError, load_config
from jarob.learners.regularizers import ernie_distance, ernie_perturbation, ernie_regularizer, hinge_margin, l2_distance, pr_regularizer, regularizer_weight


def _box(lo=0.0, hi=1.0, eps=0.1):
    """proj(clean, x) onto B_eps(clean) ∩ [lo, hi]."""
    return lambda clean, x: jnp.clip(x, jnp.maximum(clean - eps, lo), jnp.minimum(clean + eps, hi))


def test_hinge_margin_hand_computed():
    q = jnp.array([[1.0, 3.0, 2.0, 9.0], [0.0, 5.0, 1.0, 1.0]])
    avail = jnp.array([[True, True, True, False], [False, True, False, False]])
    best = jnp.array([1, 1])
    # agent 0: runner-up among available others = 2 -> 2 - 3 = -1 (action 3 is masked);
    # agent 1: no other available action -> the floor -c.
    np.testing.assert_allclose(hinge_margin(q, avail, best, 10.0), [-1.0, -10.0])
    np.testing.assert_allclose(hinge_margin(q, avail, best, 0.5), [-0.5, -0.5])


def test_pr_regularizer_hand_computed():
    """Q(x) = (x, -x) on one feature: a* = 0 at x = 0.5; the margin -2x grows as x falls, so
    the ascent lands on 0.5 - eps = 0.4 and R = max(-0.8, -c) per agent."""
    q_fn = lambda x: jnp.concatenate([x, -x], axis=-1)  # noqa: E731
    obs = jnp.full((2, 1), 0.5)  # two agents
    avail = jnp.ones((2, 2), bool)
    r = pr_regularizer(q_fn, obs, avail, _box(eps=0.1), c=10.0, steps=2, step_size=0.25)
    np.testing.assert_allclose(r, -1.6, rtol=1e-6)  # two agents x -0.8
    r = pr_regularizer(q_fn, obs, avail, _box(eps=0.1), c=0.5, steps=2, step_size=0.25)
    np.testing.assert_allclose(r, -1.0, rtol=1e-6)  # the floor: two agents x -0.5


def test_pr_regularizer_gradient_stops_at_the_perturbed_point():
    """d R / d theta only through Q(o~): for Q = theta * (x, -x), R = theta * (-2 x~)."""
    obs = jnp.full((1, 1), 0.5)
    avail = jnp.ones((1, 2), bool)

    def r(theta):
        return pr_regularizer(lambda x: theta * jnp.concatenate([x, -x], -1), obs, avail, _box(eps=0.1), c=10.0, steps=1, step_size=0.1)

    np.testing.assert_allclose(jax.grad(r)(1.0), -0.8, rtol=1e-6)


def test_ernie_distance_and_regularizer_hand_computed():
    q0 = jnp.array([[1.0, 2.0, 3.0]])
    q1 = jnp.array([[1.5, 0.0, 30.0]])
    avail = jnp.array([[True, True, False]])
    np.testing.assert_allclose(l2_distance(q1, q0, avail), [0.25 + 4.0])
    # Q(x) = x * w: D(x) = (x - o)^2 |w|^2 on the available actions; ascent reaches the ball's
    # edge, so R = eps^2 |w|^2 = 0.01 * (1 + 4).
    w = jnp.array([1.0, -2.0, 7.0])
    q_fn = lambda x: x * w  # noqa: E731
    obs = jnp.full((1, 1), 0.5)
    start = obs + 0.02
    for stackelberg in (False, True):
        r = ernie_regularizer(q_fn, obs, jnp.array([[True, True, False]]), _box(eps=0.1), start, jnp.ones(1, bool), steps=3, step_size=0.05, stackelberg=stackelberg)
        np.testing.assert_allclose(r, [0.05], rtol=1e-5)
    # mixer_l2: agent i's D weighted by w_i; two agents with slopes w and 3w, weights 4 and 0.5:
    # R = 4 * 0.05 + 0.5 * 9 * 0.05, and the perturbation (each at its ball's edge) is unchanged.
    q_fn2 = lambda x: x * w * jnp.array([[1.0], [3.0]])  # noqa: E731
    obs2, avail2 = jnp.full((2, 1), 0.5), jnp.array([[True, True, False]] * 2)
    r = ernie_regularizer(q_fn2, obs2, avail2, _box(eps=0.1), obs2 + 0.02, jnp.ones(1, bool), steps=3, step_size=0.05, stackelberg=False, distance=ernie_distance("mixer_l2"), agent_weight=jnp.array([4.0, 0.5]))
    np.testing.assert_allclose(r, 4 * 0.05 + 0.5 * 9 * 0.05, rtol=1e-5)


_TINY_OBS = np.array([[0.1, -0.2, 0.3]])  # numpy: float64 under jax.enable_x64
_TINY_START = _TINY_OBS + np.array([[0.01, 0.02, -0.015]])


def _tiny_q_fn(theta):
    def q_fn(x):
        h = jnp.tanh(x @ theta[:3] + theta[3])[..., None] * jnp.array([1.0, -2.0])
        return h + theta[4] * jnp.sum(x**2, -1, keepdims=True) * jnp.array([0.5, 1.0])

    return q_fn


def _tiny_ernie(stackelberg, normaliser="max", unroll=None, steps=2, start=_TINY_START):
    """R(theta) for Q(x) = tanh(theta_0 x + theta_1) * (1, -2) + theta_2 x^2 on 3 features, K =
    `steps` (2) from `start` inside a ball large enough that the projection is inactive."""

    def r(theta):
        return jnp.sum(ernie_regularizer(_tiny_q_fn(theta), _TINY_OBS, jnp.ones((1, 2), bool), _box(-10.0, 10.0, eps=5.0), start, jnp.ones(3, bool), steps=steps, step_size=0.05, stackelberg=stackelberg, normaliser=normaliser, unroll=unroll))

    return r


def _central_differences(f, theta, h=1e-6):
    """(f(theta + h e_i) - f(theta - h e_i)) / 2h for each unit vector e_i (run under x64)."""
    return np.array([(float(f(jnp.asarray(theta + h * e))) - float(f(jnp.asarray(theta - h * e)))) / (2 * h) for e in np.eye(len(theta))])


def test_stackelberg_gradient_matches_finite_differences():
    theta = np.array([0.7, -0.4, 1.1, 0.2, 0.3], np.float64)
    with jax.enable_x64(True):
        r_st = _tiny_ernie(True)
        g = np.asarray(jax.grad(r_st)(jnp.asarray(theta)))
        g_plain = np.asarray(jax.grad(_tiny_ernie(False))(jnp.asarray(theta)))
        fd = _central_differences(r_st, theta)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-9)
    # The plain variant drops the leader-follower term, so it misses the total derivative.
    assert np.max(np.abs(g_plain - fd)) > 1e-3 * np.max(np.abs(fd))


def test_stackelberg_unroll_truncates_the_derivative():
    """reg.unroll=1 of K = 2: R's value is the full ascent's, its gradient is the total derivative
    of R with the first step's point delta^1 held at its value (one differentiable step from there,
    checked by finite differences), neither the full Stackelberg gradient nor the plain one;
    unroll = K is the full Stackelberg gradient."""
    theta = np.array([0.7, -0.4, 1.1, 0.2, 0.3], np.float64)
    with jax.enable_x64(True):
        t = jnp.asarray(theta)
        full, plain, last = (np.asarray(jax.grad(_tiny_ernie(st, unroll=u))(t)) for st, u in ((True, None), (False, None), (True, 1)))
        np.testing.assert_allclose(float(_tiny_ernie(True, unroll=1)(t)), float(_tiny_ernie(True)(t)), rtol=1e-12)
        np.testing.assert_array_equal(np.asarray(jax.grad(_tiny_ernie(True, unroll=2))(t)), full)
        q_fn = _tiny_q_fn(t)
        first = ernie_perturbation(q_fn, _TINY_OBS, q_fn(_TINY_OBS), jnp.ones((1, 2), bool), _box(-10.0, 10.0, eps=5.0), _TINY_START, jnp.ones(3, bool), steps=1, step_size=0.05)
        fd = _central_differences(_tiny_ernie(True, steps=1, start=first), theta)
    np.testing.assert_allclose(last, fd, rtol=1e-5, atol=1e-9)
    for other in (full, plain):
        assert np.max(np.abs(last - other)) > 1e-3 * np.max(np.abs(other))


def test_ernie_ascent_normalisers():
    """One step on Q(x) = x * w from o + 0.02 (g = 2 * 0.02 * |w|^2 = 0.2 on the available
    actions): "max" moves by the step size (x = 0.57, R = 0.07^2 * 5), "none" by step size * g
    (x = 0.53, R = 0.03^2 * 5), "max_held" as "max" in value; the Stackelberg derivative of the
    unnormalised ascent matches finite differences, that of "max_held" does not (a diagnostic that
    drops the normaliser's derivative)."""
    w = jnp.array([1.0, -2.0, 7.0])
    obs, avail = jnp.full((1, 1), 0.5), jnp.array([[True, True, False]])
    for normaliser, expected in (("max", 0.07**2 * 5), ("max_held", 0.07**2 * 5), ("none", 0.03**2 * 5)):
        r = ernie_regularizer(lambda x: x * w, obs, avail, _box(eps=0.1), obs + 0.02, jnp.ones(1, bool), steps=1, step_size=0.05, stackelberg=True, normaliser=normaliser)
        np.testing.assert_allclose(r, [expected], rtol=1e-5)
    theta = np.array([0.7, -0.4, 1.1, 0.2, 0.3], np.float64)
    with jax.enable_x64(True):
        for normaliser, exact in (("none", True), ("max_held", False)):
            g = np.asarray(jax.grad(_tiny_ernie(True, normaliser))(jnp.asarray(theta)))
            fd = _central_differences(_tiny_ernie(True, "max" if normaliser == "max_held" else normaliser), theta)
            if exact:
                np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-9)
            else:
                assert np.max(np.abs(g - fd)) > 1e-3 * np.max(np.abs(fd))


def test_schedules():
    cfg = load_config(["reg=pr"]).reg
    assert float(regularizer_weight(cfg, 0.49)) == 0.0 and float(regularizer_weight(cfg, 0.5)) == pytest.approx(0.1)
    rep = load_config(["reg=pr_rep"]).reg  # ramps 0 -> 0.1 three times
    np.testing.assert_allclose([float(regularizer_weight(rep, f)) for f in (0.0, 1 / 6, 0.3, 1 / 3 + 1e-6, 0.5)], [0.0, 0.05, 0.09, 0.0, 0.05], atol=1e-5)
    ernie = load_config(["reg=ernie"]).reg
    assert float(regularizer_weight(ernie, 0.0)) == float(regularizer_weight(ernie, 0.9)) == pytest.approx(0.1)


@pytest.mark.parametrize("overrides, message", [(["reg=foo"], "reg: unknown 'foo'"), (["reg=pr", "reg.steps=0"], "reg.steps: must be > 0"), (["reg=pr", "reg.schedule=cosine"], "reg.schedule"), (["reg=ernie", "reg.distance=l1"], "reg.distance: must be one of l2, mixer_l2, kl"), (["reg=ernie", "reg.temperature=0"], "reg.temperature: must be > 0"), (["reg=ernie", "reg.unroll=4"], r"reg.unroll: must lie in \[1, reg.steps = 3\]")])
def test_bad_regularizer_config(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides)


def _tiny_run_state(tiny_run):
    """Seed 0's training state (team, optimiser, replay buffer) at the shared tiny run's last
    checkpoint; a regularizer adds no state, so a regularized learner reads it as it is."""
    from conftest import last_checkpoint

    return jax.tree.map(lambda x: x[0], last_checkpoint(tiny_run))


@pytest.mark.parametrize("reg", [["reg=pr"], ["reg=ernie"], ["reg=ernie", "reg.distance=mixer_l2"]])
def test_regularized_learner_on_stored_sequences(reg, tiny_run):
    """The per-step utilities at the stored context equal the unrolled ones; the loss is TD +
    weight * R; R's gradient reaches the agent but not the mixer (mixer_l2's weights are constants).
    On the shared tiny run's last checkpoint (seed 0's team and replay buffer)."""
    from jarob.trainer import Trainer

    from conftest import TINY

    state = _tiny_run_state(tiny_run)
    tr = Trainer(load_config(TINY + reg + ["reg.schedule=constant"]))
    seq = jax.tree.map(lambda x: x[:4], state.learner.buffer).time_major()
    lrn, params = tr.learner, state.learner.params
    from jarob.networks import unroll_sequence

    q, context = unroll_sequence(params["agent"], seq.hidden, seq, lrn.num_actions, with_context=True)
    _, q_step = lrn.step_q(params["agent"], context[:-1], seq.obs[:-1], seq.last_action[:-1], seq.first[:-1])
    np.testing.assert_allclose(q_step, q[:-1], rtol=1e-4, atol=1e-5)

    key = jax.random.PRNGKey(1)
    total, m = lrn.loss(params, state.learner.target_params, seq, None, key, 0.1)
    np.testing.assert_allclose(float(total), float(m["loss"]) + 0.1 * float(m["reg"]), rtol=1e-5)
    g = jax.grad(lambda p: lrn.loss(p, state.learner.target_params, seq, None, key, 1.0)[0] - lrn.loss(p, state.learner.target_params, seq, None, key, 0.0)[0])(params)
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(g["agent"])) > 0
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(g["mixer"])) == 0


def test_ernie_kl_distance_hand_computed_and_shift_invariant():
    """KL(softmax(q0 / T) || softmax(q1 / T)) over the available actions, by hand for two actions."""
    q0 = jnp.array([[0.0, 1.0, 5.0]])
    q1 = jnp.array([[1.0, 0.0, -5.0]])
    avail = jnp.array([[True, True, False]])
    for t in (1.0, 0.5):
        p = np.exp([0.0, 1.0 / t]) / np.sum(np.exp([0.0, 1.0 / t]))
        q = np.exp([1.0 / t, 0.0]) / np.sum(np.exp([1.0 / t, 0.0]))
        np.testing.assert_allclose(ernie_distance("kl", t)(q1, q0, avail), [np.sum(p * np.log(p / q))], rtol=1e-5)
    # A shift of every action's value changes l2 but not kl.
    np.testing.assert_allclose(ernie_distance("kl")(q0 + 3.0, q0, avail), [0.0], atol=1e-6)
    np.testing.assert_allclose(ernie_distance("l2")(q0 + 3.0, q0, avail), [18.0])


def test_keep_if_finite_hand_computed():
    """A pytree with a NaN or inf floating leaf is replaced by the old one (dropped = 1); integer
    leaves are not checked; a finite pytree passes unchanged (dropped = 0)."""
    from jarob.learners.optim import keep_if_finite

    old = {"w": jnp.array([1.0, 2.0]), "n": jnp.int32(3)}
    for bad in (jnp.nan, jnp.inf):
        kept, dropped = keep_if_finite({"w": jnp.array([5.0, bad]), "n": jnp.int32(4)}, old)
        np.testing.assert_array_equal(kept["w"], [1.0, 2.0])
        assert int(kept["n"]) == 3 and float(dropped) == 1.0
    kept, dropped = keep_if_finite({"w": jnp.array([5.0, 6.0]), "n": jnp.int32(4)}, old)
    np.testing.assert_array_equal(kept["w"], [5.0, 6.0])
    assert int(kept["n"]) == 4 and float(dropped) == 0.0


def test_team_learner_drops_a_nonfinite_step(tiny_run):
    """A batch whose gradient is NaN leaves the learner state exactly as it was and counts one
    dropped step; a clean batch is applied (the step VDN/QMIX take with Stackelberg ERNIE, whose
    gradient can overflow, see `keep_if_finite`). On the shared tiny run's last checkpoint."""
    from jarob.trainer import Trainer

    from conftest import TINY

    tr = Trainer(load_config(TINY + ["reg=ernie"]))
    state = _tiny_run_state(tiny_run)
    batch = jax.tree.map(lambda x: x[:4], state.learner.buffer)
    key, update = jax.random.PRNGKey(1), jax.jit(tr.learner.update)
    new, m = update(state.learner, batch, key=key)
    assert float(m["dropped"]) == 0.0 and int(new.updates) == int(state.learner.updates) + 1
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.learner.params)))
    poisoned = batch.replace(obs=batch.obs.at[0, 1].set(jnp.nan))
    new, m = update(state.learner, poisoned, key=key)
    assert float(m["dropped"]) == 1.0 and not np.isfinite(float(m["loss"]))
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state.learner)):
        np.testing.assert_array_equal(a, b)
