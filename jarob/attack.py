"""python -m jarob.attack victim=<run_dir> adv=<atla|paad|atsa|rap> [attackers=K] [total_steps=T] [run_dir=PATH] ...

Trains a learned attacker (ATLA, or a director adversary: PAAD, ATSA, a RAP population) against a
frozen trained team: `attackers` attackers (default 1) against every seed of the victim, all in
one jitted, vmapped program; attacker k of victim seed s is the attacker of seed s that a
one-attacker run with `seed=<seed>+k` trains. The team acts greedily and does not learn; env, learner and
seeds come from the victim's run, except the budget `env.eps`, which may be set (an attacker for
another eps than the team was trained at). The run directory (config.yaml, metrics.csv whose eval
columns are the victim's win rate under each attacker at every chunk, attack_curve.png,
checkpoints/, attack.json, adversary.msgpack, summary.json) is an adversary column for
`python -m jarob.evaluate adversaries=[...,<run_dir>]`, which reports the strongest attacker of
each team seed. The run ends with a line saying whether the victim's win rate was still falling
over its last quarter (`jarob.convergence`). `resume=true` continues a killed run."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

USAGE = __doc__.strip().splitlines()[0]
_FROM_VICTIM = ("env", "alg", "seeds")  # keys that come from the victim's run


def attack_config(victim: str, overrides: list[str]):
    """The TrainConfig of an attack on `victim`: the victim's env, learner and seeds plus
    `overrides` (adv=..., total_steps=..., ...). Raises ConfigError / EvaluationError."""
    from jarob.adversaries import ADVERSARIES
    from jarob.config import ConfigError, load_config
    from jarob.evaluation import load_team

    learned = [n for n in ADVERSARIES.names() if ADVERSARIES.get(n).learned]

    team = load_team(victim)
    for ov in overrides:
        key = ov.partition("=")[0].lstrip("+~")
        if key.split(".")[0] in _FROM_VICTIM and key != "env.eps":
            raise ConfigError(f"{key}: comes from the victim's run and cannot be overridden")
    adv = [ov.partition("=")[2] for ov in overrides if ov.partition("=")[0] == "adv"]
    if not adv or adv[-1] not in learned:
        got = adv[-1] if adv else "none"
        raise ConfigError(f"adv: jarob.attack trains a learned attacker; allowed: {', '.join(learned)} (got {got!r})")
    victim_alg = [f"alg.{k}={v}" for k, v in dataclasses.asdict(team.alg).items() if k != "name"]
    # An attacker attacks every episode unless told otherwise (a later override wins).
    return load_config([f"env={team.env_name}", f"alg={team.alg.name}", f"seeds={team.seeds}", "protocol.attack_prob=1.0", *overrides, *victim_alg])


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        print("Keys and defaults: configs/config.yaml, configs/adv/{atla,paad,atsa,rap}.yaml (see README.md).")
        return 0
    from jarob.config import ConfigError
    from jarob.evaluation import EvaluationError
    from jarob.train import ATTACK_FILE, launch

    victims = [a.partition("=")[2] for a in args if a.partition("=")[0] == "victim"]
    rest = [a for a in args if a.partition("=")[0] != "victim"]
    try:
        if not victims or not victims[-1]:
            raise ConfigError("victim: give the run directory of a trained team, e.g. victim=runs/noadv")
        victim = victims[-1]
        cfg = attack_config(victim, rest)
        saved = os.path.join(cfg.run_dir or "", ATTACK_FILE)
        if cfg.resume and cfg.run_dir and os.path.isfile(saved):
            with open(saved) as f:
                before = json.load(f)["victim"]
            if before != os.path.abspath(victim):
                raise ConfigError(f"victim: {victim!r} differs from the resumed run's {before!r}")
    except (ConfigError, EvaluationError) as exc:
        print(f"jarob.attack: error: {str(exc).replace('runs: ', 'victim: ', 1)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while importing the environments or reading the victim
        print("jarob.attack: interrupted while starting; nothing was written", file=sys.stderr)
        return 130
    return launch(cfg, "jarob.attack", victim, args=args)


if __name__ == "__main__":
    sys.exit(main())
