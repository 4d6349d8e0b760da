"""Typed, validated run configuration.

The YAML files in `configs/` (installed as `jarob.configs`) hold every default; `load_config`
composes them with hydra overrides (`key=value`, `group=option`, `alg.lr=...`) and converts the
result into frozen dataclasses. Training code only ever sees these dataclasses. Every error is a
`ConfigError` whose message is one line naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any, Optional

GROUPS = ("env", "alg", "adv", "reg")


class ConfigError(ValueError):
    """A bad configuration value; the message is one line naming the key."""


@dataclass(frozen=True)
class EnvConfig:
    name: str
    eps: Optional[float]  # attack budget; None = the environment's default (DESIGN.md section 5)


@dataclass(frozen=True)
class AlgConfig:
    """Value-decomposition Q-learning (VDN / QMIX) over a shared GRU agent."""

    name: str
    hidden_dim: int
    mixer_embed_dim: int
    hypernet_hidden: int
    lr: float
    lr_final: float
    grad_clip: float
    gamma: float
    td_lambda: float
    reward_scale: float
    eps_start: float
    eps_end: float
    eps_anneal_steps: int
    num_envs: int
    rollout_len: int
    updates_per_rollout: int
    batch_size: int
    buffer_size: int
    target_update_every: int
    team_ema: float  # Polyak rate of the evaluated team's parameters per gradient step (1 = online)


@dataclass(frozen=True)
class DirectorConfig:
    """A learned director (PAAD's QMIX director, ATSA's SDor): it picks each agent's target
    action from the clean observations and learns from -r (DESIGN.md section 4)."""

    name: str  # qmix (PAAD: epsilon-greedy QMIX) | sdor (ATSA: factorized soft Q-learning)
    hidden_dim: int  # GRU width of its agent networks
    mixer_embed_dim: int  # QMIX mixer width / SDor weight and value networks' width
    hypernet_hidden: int  # QMIX hypernetwork width
    lr: float
    lr_final: float
    grad_clip: float
    gamma: float
    td_lambda: float
    reward_scale: float
    eps_start: float  # qmix: epsilon-greedy exploration, linear in env steps
    eps_end: float
    eps_anneal_steps: int
    alpha_start: float  # sdor: entropy temperature, linear from alpha_start to alpha_end
    alpha_end: float
    alpha_anneal_steps: int
    value: str  # sdor: individual V_i: logsumexp (eq. 5) | network (eq. 7's V^i, an output of its own fitted by eq. 9)
    individual_alpha: str  # sdor: alpha_i in eqs. 9-10: shared (alpha_i = alpha) | weighted (alpha_i = alpha / lambda_i, eq. 6)
    kappa: float  # sdor: weight of the SDor-STor loss (ATSA eq. 15); 0 = the ablation
    stor_action: str  # sdor: the protagonist's action in eq. 14: greedy (its deterministic policy pi on o~) | taken (the epsilon-greedy action it played)
    updates_per_rollout: int
    batch_size: int
    buffer_size: int
    target_update_every: int

    @property
    def team_ema(self) -> float:  # read by the shared value-decomposition learner
        return 1.0


@dataclass(frozen=True)
class PPOConfig:
    """ATLA's MAPPO observation adversary: a Gaussian policy over each agent's perturbation
    (an MLP on the clean observation and the agent id), a centralized critic V(s), PPO-clip."""

    hidden_dim: int  # width of the two hidden layers of the actor and of the critic
    init_log_std: float  # initial log standard deviation of the pre-tanh Gaussian (state independent)
    lr: float
    lr_final: float
    grad_clip: float
    gamma: float
    gae_lambda: float
    reward_scale: float  # the adversary's reward is -r * reward_scale
    clip: float  # PPO ratio clip
    epochs: int  # passes over each rollout
    minibatches: int  # per pass; must divide num_envs * rollout_len
    value_coef: float
    entropy_coef: float


@dataclass(frozen=True)
class AdvConfig:
    """The adversary the team trains against (and its attack settings)."""

    name: str
    temperature: float
    steps: int
    step_size: Optional[float]
    random_start: bool
    targeted: bool
    attack_prob: float  # training mode: probability that an episode is attacked (test mode: always)
    alternate: int  # learned adversaries in training: iterations per phase, team and adversary learning in turn (team first); 0 = both every iteration
    ramp_frac: float  # training: the share of the run over which the acting budget rises linearly from 0 to eps; 0 = the full budget throughout
    clean_td: float  # training: weight of the team's TD loss on the clean view of its stored sequences, added to the one on what it saw; 0 = the papers' team, which learns from what it saw only
    consistency: float  # training: weight of D(Q(what it saw), Q(clean view)) (mixer-weighted squared l2, the clean side held constant) in the team's loss; 0 = none
    population: int  # rap: how many PAAD directors; each episode plays one drawn uniformly
    director: Optional[DirectorConfig]  # learned director adversaries only (paad, atsa, rap)
    ppo: Optional[PPOConfig]  # atla only


@dataclass(frozen=True)
class RegConfig:
    """An adversarial regularizer added to the team's TD loss (PR, PR-REP, ERNIE; DESIGN.md
    section 4): loss = TD + weight(t) * R."""

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


@dataclass(frozen=True)
class TrainConfig:
    env: EnvConfig
    alg: AlgConfig
    adv: AdvConfig
    reg: RegConfig
    seed: int
    seeds: int
    total_steps: int
    eval_every: int
    eval_episodes: int
    final_eval_episodes: int
    checkpoint_every: int
    solve_win_rate: float
    run_dir: Optional[str]
    resume: bool
    progress: bool
    tensorboard: bool

    @property
    def steps_per_iteration(self) -> int:
        """Environment steps per seed collected by one rollout of every parallel env."""
        return self.alg.num_envs * self.alg.rollout_len

    @property
    def total_iterations(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_iteration)

    @property
    def iterations_per_chunk(self) -> int:
        """Iterations between two greedy evaluations (one compiled chunk)."""
        return max(1, round(self.eval_every / self.steps_per_iteration))


_ALLOWED = {
    "alg": ("qmix", "vdn"),
    "adv": ("none", "rn", "fgsm", "pgd", "atla", "paad", "atsa", "rap"),
    "reg": ("none", "pr", "pr_rep", "ernie"),
}


def config_dir() -> str:
    return str(resources.files("jarob.configs"))


def group_options(group: str) -> tuple[str, ...]:
    """The options of a config group: its YAML files (env), restricted to implemented ones."""
    names = sorted(p.name[:-5] for p in resources.files("jarob.configs").joinpath(group).iterdir() if p.name.endswith(".yaml"))
    allowed = _ALLOWED.get(group)
    return tuple(n for n in names if allowed is None or n in allowed)


# -- conversion ----------------------------------------------------------------------


def _check_type(key: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _check_type(key, value, args[0])
    if origin is tuple:  # tuple[X, ...]: a YAML/hydra list
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list like [a,b], got {value!r}")
        item = typing.get_args(tp)[0]
        return tuple(_check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp}")


def _build(cls, data: Any, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key; allowed: {', '.join(sorted(names))}")
    values = {}
    for f in fields(cls):
        key = prefix + f.name
        if f.name not in data:
            raise ConfigError(f"{key}: missing")
        tp = hints[f.name]
        optional = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and dataclasses.is_dataclass(optional[0]):
            values[f.name] = None if data[f.name] is None else _build(optional[0], data[f.name], key + ".")
        elif dataclasses.is_dataclass(tp):
            values[f.name] = _build(tp, data[f.name], key + ".")
        else:
            values[f.name] = _check_type(key, data[f.name], tp)
    return cls(**values)


def _require(ok: bool, msg: str) -> None:
    if not ok:
        raise ConfigError(msg)


def validate(cfg: TrainConfig) -> TrainConfig:
    """Range checks that types alone do not catch."""
    from jarob.envs import ENV_NAMES

    _require(cfg.env.name in ENV_NAMES, f"env: unknown {cfg.env.name!r}; allowed: {', '.join(ENV_NAMES)}")
    _require(cfg.env.eps is None or cfg.env.eps >= 0, f"env.eps: must be >= 0, got {cfg.env.eps}")
    _require(cfg.alg.name in _ALLOWED["alg"], f"alg: unknown {cfg.alg.name!r}; allowed: {', '.join(_ALLOWED['alg'])}")
    _require(cfg.adv.name in _ALLOWED["adv"], f"adv: unknown {cfg.adv.name!r}; allowed: {', '.join(_ALLOWED['adv'])}")
    positive = {
        "seeds": cfg.seeds,
        "total_steps": cfg.total_steps,
        "eval_every": cfg.eval_every,
        "eval_episodes": cfg.eval_episodes,
        "final_eval_episodes": cfg.final_eval_episodes,
        "checkpoint_every": cfg.checkpoint_every,
    }
    a = cfg.alg
    positive.update(
        {
            f"alg.{k}": getattr(a, k)
            for k in (
                "hidden_dim",
                "mixer_embed_dim",
                "hypernet_hidden",
                "lr",
                "lr_final",
                "grad_clip",
                "reward_scale",
                "eps_anneal_steps",
                "num_envs",
                "rollout_len",
                "updates_per_rollout",
                "batch_size",
                "buffer_size",
                "target_update_every",
            )
        }
    )
    for key, v in positive.items():
        _require(v > 0, f"{key}: must be > 0, got {v}")
    _require(cfg.adv.temperature > 0, f"adv.temperature: must be > 0, got {cfg.adv.temperature}")
    _require(0.0 <= cfg.adv.attack_prob <= 1.0, f"adv.attack_prob: must lie in [0, 1], got {cfg.adv.attack_prob}")
    _require(cfg.adv.steps > 0, f"adv.steps: must be > 0, got {cfg.adv.steps}")
    _require(cfg.adv.step_size is None or cfg.adv.step_size > 0, f"adv.step_size: must be > 0, got {cfg.adv.step_size}")
    _require(cfg.seed >= 0, f"seed: must be >= 0, got {cfg.seed}")
    _require(cfg.adv.alternate >= 0, f"adv.alternate: must be >= 0, got {cfg.adv.alternate}")
    _require(0.0 <= cfg.adv.ramp_frac <= 1.0, f"adv.ramp_frac: must lie in [0, 1], got {cfg.adv.ramp_frac}")
    for key, v in {"adv.clean_td": cfg.adv.clean_td, "adv.consistency": cfg.adv.consistency}.items():
        _require(v >= 0, f"{key}: must be >= 0, got {v}")
        _require(v == 0 or cfg.adv.name != "none", f"{key}: the clean view differs from what the team saw only under an adversary; set it to 0 for adv=none")
    _require(cfg.adv.population >= 1, f"adv.population: must be >= 1, got {cfg.adv.population}")
    _require(cfg.adv.population == 1 or cfg.adv.name == "rap", f"adv.population: only rap has a population; set it to 1 for adv={cfg.adv.name}")
    if cfg.adv.name in LEARNED_ADVERSARIES:
        _require(cfg.adv.attack_prob > 0.0, f"adv.attack_prob: a learned adversary learns from the episodes it attacks; must be > 0, got {cfg.adv.attack_prob}")
    _validate_director(cfg.adv, a.num_envs)
    _validate_ppo(cfg.adv, a.num_envs * a.rollout_len)
    _validate_regularizer(cfg.reg)
    _require(0.0 < a.team_ema <= 1.0, f"alg.team_ema: must lie in (0, 1], got {a.team_ema}")
    for key, v in {"alg.gamma": a.gamma, "alg.td_lambda": a.td_lambda, "alg.eps_start": a.eps_start, "alg.eps_end": a.eps_end, "solve_win_rate": cfg.solve_win_rate}.items():
        _require(0.0 <= v <= 1.0, f"{key}: must lie in [0, 1], got {v}")
    _require(a.eps_end <= a.eps_start, f"alg.eps_end: must not exceed alg.eps_start ({a.eps_start}), got {a.eps_end}")
    _require(
        a.buffer_size % a.num_envs == 0 and a.buffer_size >= a.num_envs,
        f"alg.buffer_size: must be a multiple of alg.num_envs ({a.num_envs}), got {a.buffer_size}",
    )
    _require(cfg.run_dir is None or cfg.run_dir.strip() != "", "run_dir: must not be empty")
    return cfg


def _validate_regularizer(r: RegConfig) -> None:
    _require(r.name in _ALLOWED["reg"], f"reg: unknown {r.name!r}; allowed: {', '.join(_ALLOWED['reg'])}")
    _require(r.weight >= 0, f"reg.weight: must be >= 0, got {r.weight}")
    _require(r.schedule in ("constant", "step", "repeat"), f"reg.schedule: must be one of constant, step, repeat; got {r.schedule!r}")
    _require(0.0 <= r.start_frac <= 1.0, f"reg.start_frac: must lie in [0, 1], got {r.start_frac}")
    _require(r.cycles > 0, f"reg.cycles: must be > 0, got {r.cycles}")
    _require(r.hinge_c > 0, f"reg.hinge_c: must be > 0, got {r.hinge_c}")
    _require(r.steps > 0, f"reg.steps: must be > 0, got {r.steps}")
    _require(r.step_size is None or r.step_size > 0, f"reg.step_size: must be > 0, got {r.step_size}")
    _require(r.unroll is None or 1 <= r.unroll <= r.steps, f"reg.unroll: must lie in [1, reg.steps = {r.steps}] or be null, got {r.unroll}")
    _require(r.eps is None or r.eps > 0, f"reg.eps: must be > 0, got {r.eps}")
    _require(r.distance in ("l2", "mixer_l2", "kl"), f"reg.distance: must be one of l2, mixer_l2, kl; got {r.distance!r}")
    _require(r.temperature > 0, f"reg.temperature: must be > 0, got {r.temperature}")


_DIRECTORS = {"paad": "qmix", "atsa": "sdor", "rap": "qmix"}
LEARNED_ADVERSARIES = ("atla", *_DIRECTORS)  # the adversaries that learn (and `jarob.attack` trains)


def _validate_ppo(adv: AdvConfig, samples: int) -> None:
    p = adv.ppo
    if adv.name != "atla":
        _require(p is None, "adv.ppo: only atla has one; set it to null")
        return
    _require(p is not None, "adv.ppo: adv=atla needs its ppo settings")
    for k in ("hidden_dim", "lr", "lr_final", "grad_clip", "reward_scale", "clip", "epochs", "minibatches"):
        _require(getattr(p, k) > 0, f"adv.ppo.{k}: must be > 0, got {getattr(p, k)}")
    for k in ("gamma", "gae_lambda"):
        _require(0.0 <= getattr(p, k) <= 1.0, f"adv.ppo.{k}: must lie in [0, 1], got {getattr(p, k)}")
    for k in ("value_coef", "entropy_coef"):
        _require(getattr(p, k) >= 0, f"adv.ppo.{k}: must be >= 0, got {getattr(p, k)}")
    _require(samples % p.minibatches == 0, f"adv.ppo.minibatches: must divide alg.num_envs * alg.rollout_len ({samples}), got {p.minibatches}")


def _validate_director(adv: AdvConfig, num_envs: int) -> None:
    d = adv.director
    if adv.name not in _DIRECTORS:
        _require(d is None, f"adv.director: only the director adversaries ({', '.join(_DIRECTORS)}) have one; set it to null")
        return
    _require(d is not None, f"adv.director: adv={adv.name} needs its director settings")
    _require(d.name == _DIRECTORS[adv.name], f"adv.director.name: adv={adv.name} uses {_DIRECTORS[adv.name]!r}, got {d.name!r}")
    for k in ("hidden_dim", "mixer_embed_dim", "hypernet_hidden", "lr", "lr_final", "grad_clip", "reward_scale", "eps_anneal_steps", "alpha_anneal_steps", "updates_per_rollout", "batch_size", "buffer_size", "target_update_every"):
        _require(getattr(d, k) > 0, f"adv.director.{k}: must be > 0, got {getattr(d, k)}")
    for k in ("gamma", "td_lambda", "eps_start", "eps_end"):
        _require(0.0 <= getattr(d, k) <= 1.0, f"adv.director.{k}: must lie in [0, 1], got {getattr(d, k)}")
    _require(d.alpha_end > 0 and d.alpha_start >= d.alpha_end, f"adv.director.alpha_end: must be > 0 and <= alpha_start ({d.alpha_start}), got {d.alpha_end}")
    _require(d.value in ("logsumexp", "network"), f"adv.director.value: must be one of logsumexp, network; got {d.value!r}")
    _require(d.individual_alpha in ("shared", "weighted"), f"adv.director.individual_alpha: must be one of shared, weighted; got {d.individual_alpha!r}")
    _require(d.kappa >= 0, f"adv.director.kappa: must be >= 0, got {d.kappa}")
    _require(d.stor_action in ("greedy", "taken"), f"adv.director.stor_action: must be one of greedy, taken; got {d.stor_action!r}")
    _require(d.buffer_size % num_envs == 0, f"adv.director.buffer_size: must be a multiple of alg.num_envs ({num_envs}), got {d.buffer_size}")


def from_dict(data: dict) -> TrainConfig:
    """Build and validate a TrainConfig from a plain (resolved) mapping."""
    return validate(_build(TrainConfig, data, ""))


def from_saved(data: dict) -> TrainConfig:
    """A run's saved config.yaml; keys added to jarob after the run was made take their defaults."""

    def merge(base: dict, over: dict) -> dict:
        return {**base, **{k: merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v for k, v in over.items()}}

    groups = [f"{g}={data[g]['name']}" for g in GROUPS if isinstance(data.get(g), dict) and "name" in data[g] and g != "env"]
    try:
        defaults = to_dict(load_config(groups))
    except ConfigError:
        defaults = {}
    return from_dict(merge(defaults, data))


def to_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)


# -- hydra composition ---------------------------------------------------------------


def _check_group_overrides(overrides: list[str]) -> None:
    for ov in overrides:
        key, sep, value = ov.partition("=")
        if not sep:
            raise ConfigError(f"{ov}: expected key=value")
        key = key.lstrip("+~")
        if key in GROUPS:
            options = group_options(key)
            if value not in options:
                raise ConfigError(f"{key}: unknown {value!r}; allowed: {', '.join(options)}")


def load_config(overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Compose configs/config.yaml with hydra overrides and validate the result."""
    overrides = list(overrides)
    _check_group_overrides(overrides)
    return from_dict(compose_dict("config", overrides))


def compose_dict(config_name: str, overrides: list[str]) -> dict:
    """configs/<config_name>.yaml composed with hydra overrides, as a plain resolved dict."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            composed = compose(config_name=config_name, overrides=list(overrides))
        data = OmegaConf.to_container(composed, resolve=True)
    except Exception as exc:  # hydra/omegaconf errors: one line that names the override
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        if lines[0].startswith("Could not override") and "not in struct" in str(exc.__cause__):
            key = lines[0].split("'")[1]
            others = [ov for ov in overrides if ov.partition("=")[0].lstrip("+~") != key]
            raise ConfigError(f"{key}: unknown key; {_known_keys(config_name, others, key)}") from None
        raise ConfigError(lines[0]) from None
    finally:
        GlobalHydra.instance().clear()
    return data


def _known_keys(config_name: str, overrides: list[str], key: str) -> str:
    """'known under <parent>: a, b, ...' for an unknown dotted `key`: the keys of its deepest
    existing parent in the config composed without it."""
    try:
        node = compose_dict(config_name, overrides)
    except ConfigError:
        return "see README.md"
    path = []
    for part in key.split(".")[:-1]:
        if not isinstance(node.get(part), dict):
            break
        node, path = node[part], path + [part]
    where = f" under {'.'.join(path)}" if path else ""
    nested = _nested_paths(node, key.split(".")[-1], path)
    hint = f"did you mean {' or '.join(nested)}? " if nested else ""
    return f"{hint}known{where}: {', '.join(sorted(node))}"


def _nested_paths(node: dict, leaf: str, path: list[str]) -> list[str]:
    """The dotted paths below `node` (itself at `path`) whose last key is `leaf`."""
    found = []
    for name, child in sorted(node.items()):
        if isinstance(child, dict):
            here = path + [name]
            if leaf in child:
                found.append(".".join(here + [leaf]))
            found += _nested_paths(child, leaf, here)
    return found


def adv_config(name: str) -> AdvConfig:
    """The AdvConfig of configs/adv/<name>.yaml."""
    return load_config([f"adv={name}"]).adv


# -- evaluation ----------------------------------------------------------------------


@dataclass(frozen=True)
class EvalConfig:
    """`python -m jarob.evaluate`: trained teams (run directories) x adversaries."""

    runs: tuple[str, ...]
    adversaries: tuple[str, ...]
    episodes: int
    out: Optional[str]
    eps: Optional[float]
    sweep_eps: Optional[tuple[float, ...]]
    compare: Optional[str]
    seed: int
    progress: bool


def load_eval_config(overrides: list[str] | tuple[str, ...] = ()) -> EvalConfig:
    """Compose configs/evaluate.yaml with overrides and validate the result."""
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"{ov}: expected key=value")
    cfg = _build(EvalConfig, compose_dict("evaluate", list(overrides)), "")
    _require(len(cfg.runs) > 0, "runs: give at least one run directory, e.g. runs=[runs/a,runs/b]")
    _require(len(cfg.adversaries) > 0, "adversaries: give at least one, e.g. adversaries=[none,fgsm]")
    _require(cfg.episodes > 0, f"episodes: must be > 0, got {cfg.episodes}")
    _require(cfg.eps is None or cfg.eps >= 0, f"eps: must be >= 0, got {cfg.eps}")
    _require(cfg.sweep_eps is None or (len(cfg.sweep_eps) > 0 and min(cfg.sweep_eps) >= 0), f"sweep_eps: must be a non-empty list of values >= 0, got {cfg.sweep_eps}")
    _require(cfg.seed >= 0, f"seed: must be >= 0, got {cfg.seed}")
    _require(cfg.out is None or cfg.out.strip() != "", "out: must not be empty")
    return cfg
