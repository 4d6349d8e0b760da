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

GROUPS = ("env", "alg", "adv", "reg")  # config groups: configs/<group>/<option>.yaml


class ConfigError(ValueError):
    """A bad configuration value; the message is one line naming the key."""


@dataclass(frozen=True)
class EnvConfig:
    name: str
    eps: Optional[float]  # attack budget; None = the environment's default (DESIGN.md section 5)


@dataclass(frozen=True)
class ProtocolConfig:
    """How the team trains against its adversary: settings that are not any one method's."""

    attack_prob: float  # training: probability that an episode is attacked (test mode: always)
    alternate: int  # learned adversaries: iterations per phase, team and adversary learning in turn (team first); 0 = both every iteration
    ramp_frac: float  # the share of the run over which the acting budget rises linearly from 0 to eps; 0 = the full budget throughout
    clean_td: float  # weight of the team's TD loss on the clean view of its stored sequences, added to the one on what it saw; 0 = the papers' team
    consistency: float  # weight of D(Q(what it saw), Q(clean view)) (mixer-weighted squared l2, the clean side held constant); 0 = none


@dataclass(frozen=True)
class TrainConfig:
    """A training run. `alg`, `adv` and `reg` are the config dataclasses their registered
    implementations own (`jarob.learners.LEARNERS`, `jarob.adversaries.ADVERSARIES`,
    `jarob.learners.regularizers.REGULARIZERS`), chosen by their `name`."""

    env: EnvConfig
    alg: Any
    adv: Any
    reg: Any
    protocol: ProtocolConfig
    seed: int
    seeds: int
    attackers: int  # jarob.attack: attackers trained per victim seed (1 for jarob.train)
    total_steps: int
    eval_every: int
    eval_episodes: int
    final_eval_episodes: int
    checkpoint_every: int
    solve_win_rate: float
    solve_crash_rate: float
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


def _registry(group: str):
    """The registry of a method group (alg, adv, reg); None for env."""
    if group == "alg":
        from jarob.learners.base import LEARNERS

        return LEARNERS
    if group == "adv":
        from jarob.adversaries.base import ADVERSARIES

        return ADVERSARIES
    if group == "reg":
        from jarob.learners.regularizers import REGULARIZERS

        return REGULARIZERS
    return None


def config_dir() -> str:
    return str(resources.files("jarob.configs"))


def group_options(group: str) -> tuple[str, ...]:
    """The options of a config group: its YAML files, for method groups only the registered ones
    (a YAML file may hold defaults shared by several options)."""
    names = sorted(p.name[:-5] for p in resources.files("jarob.configs").joinpath(group).iterdir() if p.name.endswith(".yaml"))
    registry = _registry(group)
    return tuple(n for n in names if registry is None or n in registry)


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


def _method_class(group: str, data: Any) -> type:
    """The config dataclass of the method `data["name"]` of a method group."""
    registry = _registry(group)
    name = data.get("name") if isinstance(data, dict) else None
    if name not in registry:
        raise ConfigError(f"{group}: unknown {name!r}; allowed: {', '.join(registry.names())}")
    return registry.config(name)


def build(cls, data: Any, prefix: str):
    """The dataclass `cls` from a plain mapping, every value type-checked; ConfigError (one line
    naming the key) on a missing, unknown or mistyped key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    # A method's config may name settings that group files give other methods' configs (fgsm.yaml
    # gives the value learners 4 gradient steps per rollout) and that it does not have.
    data = {k: v for k, v in data.items() if k not in getattr(cls, "foreign_keys", ())}
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
        if tp is Any and cls is TrainConfig:  # a method group: its implementation's own dataclass
            values[f.name] = build(_method_class(f.name, data[f.name]), data[f.name], key + ".")
        elif typing.get_origin(tp) in (typing.Union, types.UnionType) and dataclasses.is_dataclass(optional[0]):
            values[f.name] = None if data[f.name] is None else build(optional[0], data[f.name], key + ".")
        elif dataclasses.is_dataclass(tp):
            values[f.name] = build(tp, data[f.name], key + ".")
        else:
            values[f.name] = _check_type(key, data[f.name], tp)
    return cls(**values)


def require(ok: bool, msg: str) -> None:
    """ConfigError(msg) unless `ok`: the validation step every config uses."""
    if not ok:
        raise ConfigError(msg)


def require_positive(cfg, prefix: str, names) -> None:
    """Every named field of `cfg` > 0."""
    for k in names:
        require(getattr(cfg, k) > 0, f"{prefix}{k}: must be > 0, got {getattr(cfg, k)}")


def require_unit(cfg, prefix: str, names) -> None:
    """Every named field of `cfg` in [0, 1]."""
    for k in names:
        require(0.0 <= getattr(cfg, k) <= 1.0, f"{prefix}{k}: must lie in [0, 1], got {getattr(cfg, k)}")


def require_choice(cfg, prefix: str, name: str, allowed) -> None:
    v = getattr(cfg, name)
    require(v in allowed, f"{prefix}{name}: must be one of {', '.join(allowed)}; got {v!r}")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Range checks that types alone do not catch; each method checks its own config and its
    settings against the run's (`validate(run)` of the alg, adv and reg dataclasses)."""
    from jarob.envs import names

    require(cfg.env.name in names(), f"env: unknown {cfg.env.name!r}; allowed: {', '.join(names())}")
    require(cfg.env.eps is None or cfg.env.eps >= 0, f"env.eps: must be >= 0, got {cfg.env.eps}")
    require_positive(cfg, "", ("seeds", "attackers", "total_steps", "eval_every", "eval_episodes", "final_eval_episodes", "checkpoint_every"))
    require(cfg.seed >= 0, f"seed: must be >= 0, got {cfg.seed}")
    require_unit(cfg, "", ("solve_win_rate", "solve_crash_rate"))
    require(cfg.run_dir is None or cfg.run_dir.strip() != "", "run_dir: must not be empty")
    p = cfg.protocol
    require_unit(p, "protocol.", ("attack_prob", "ramp_frac"))
    require(p.alternate >= 0, f"protocol.alternate: must be >= 0, got {p.alternate}")
    for key in ("clean_td", "consistency"):
        v = getattr(p, key)
        require(v >= 0, f"protocol.{key}: must be >= 0, got {v}")
        require(v == 0 or cfg.adv.name != "none", f"protocol.{key}: the clean view differs from what the team saw only under an adversary; set it to 0 for adv=none")
    require(p.ramp_frac == 0 or cfg.adv.name != "none", "protocol.ramp_frac: ramps an adversary's budget; set it to 0 for adv=none")
    for part in (cfg.alg, cfg.adv, cfg.reg):
        part.validate(cfg)
    return cfg


def from_dict(data: dict) -> TrainConfig:
    """Build and validate a TrainConfig from a plain (resolved) mapping."""
    return validate(build(TrainConfig, data, ""))


# Keys a run saved by an earlier jarob kept under `adv` that are now the training protocol's.
_PROTOCOL_KEYS = ("attack_prob", "alternate", "ramp_frac", "clean_td", "consistency")


def _migrate(data: dict) -> dict:
    """A saved config in today's layout: the training-protocol keys move from `adv` to
    `protocol`, and the settings every adversary once shared are kept only by those that own them."""
    data = {**data}
    adv = data.get("adv")
    if isinstance(adv, dict) and "protocol" not in data:
        data["protocol"] = {k: adv[k] for k in _PROTOCOL_KEYS if k in adv}
        adv = {k: v for k, v in adv.items() if k not in _PROTOCOL_KEYS}
        registry = _registry("adv")
        if adv.get("name") in registry:
            own = {f.name for f in fields(registry.config(adv["name"]))}
            adv = {k: v for k, v in adv.items() if k in own}
        data["adv"] = adv
    return data


def from_saved(data: dict) -> TrainConfig:
    """A run's saved config.yaml; keys added to jarob after the run was made take their defaults,
    and an earlier layout is migrated (`_migrate`)."""
    data = _migrate(data)

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
    cfg = from_dict(compose_dict("config", overrides))
    for ov in overrides:  # a foreign key dropped from a group file is an error when given by hand
        key = ov.partition("=")[0].lstrip("+~")
        group, _, name = key.partition(".")
        if group in GROUPS and name in getattr(type(getattr(cfg, group)), "foreign_keys", ()):
            raise ConfigError(f"{key}: not a setting of {group}={getattr(cfg, group).name}")
    return cfg


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


def adv_config(name: str, settings: dict | None = None):
    """The config of adversary `name` (configs/adv/<name>.yaml) with `settings` {key: value}
    overriding its own keys (an evaluation column's `name:key=value,...`)."""
    return load_config([f"adv={name}", *(f"adv.{k}={v}" for k, v in (settings or {}).items())]).adv


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
    env: Optional[EnvConfig]  # None: the env the teams trained on
    host_envs: int


def load_eval_config(overrides: list[str] | tuple[str, ...] = ()) -> EvalConfig:
    """Compose configs/evaluate.yaml with overrides and validate the result."""
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"{ov}: expected key=value")
        key, _, value = ov.partition("=")
        if key == "adversaries" and ":" in value and "'" not in value and '"' not in value:
            raise ConfigError(f"adversaries: quote a column with settings, e.g. adversaries=[none,'malicious:rate=0.05']; got {value}")
    data = compose_dict("evaluate", list(overrides))
    data.pop("alg", None)  # what an env file sets for its learner (cav_merge's reward scale): the teams' own configs hold theirs
    cfg = build(EvalConfig, data, "")
    require(len(cfg.runs) > 0, "runs: give at least one run directory, e.g. runs=[runs/a,runs/b]")
    require(len(cfg.adversaries) > 0, "adversaries: give at least one, e.g. adversaries=[none,fgsm]")
    require(cfg.episodes > 0, f"episodes: must be > 0, got {cfg.episodes}")
    require(cfg.eps is None or cfg.eps >= 0, f"eps: must be >= 0, got {cfg.eps}")
    require(cfg.sweep_eps is None or (len(cfg.sweep_eps) > 0 and min(cfg.sweep_eps) >= 0), f"sweep_eps: must be a non-empty list of values >= 0, got {cfg.sweep_eps}")
    require(cfg.seed >= 0, f"seed: must be >= 0, got {cfg.seed}")
    require(cfg.host_envs > 0, f"host_envs: must be > 0, got {cfg.host_envs}")
    from jarob.envs import names

    require(cfg.env is None or cfg.env.name in names(), f"env: unknown {cfg.env and cfg.env.name!r}; allowed: {', '.join(names())}")
    require(cfg.env is None or cfg.env.eps is None or cfg.env.eps >= 0, f"env.eps: must be >= 0, got {cfg.env and cfg.env.eps}")
    require(cfg.out is None or cfg.out.strip() != "", "out: must not be empty")
    return cfg
