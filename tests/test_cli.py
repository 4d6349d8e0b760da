"""The CLI contract: bad input gets one clear line, exit code 2 and no run directory."""

import os
import subprocess
import sys

import pytest

from jarob.train import main

BAD = [
    (["env=smax_99m"], "env: unknown 'smax_99m'; allowed:"),
    (["alg=ppo"], "alg: unknown 'ppo'; allowed: "),
    (["adv=romance"], "adv: unknown 'romance'; allowed: atla, atsa, fgsm, "),
    (["alg.batch_size=100000"], "alg.batch_size: a batch draws sequences from the replay buffer; must not exceed alg.buffer_size (4096)"),
    (["adv=fgsm", "protocol.alternate=-1"], "protocol.alternate: must be >= 0"),
    (["protocol.ramp_frac=0.5"], "protocol.ramp_frac: ramps an adversary's budget; set it to 0 for adv=none"),
    (["adv=atsa", "adv.director.batch_size=4096"], "adv.director.batch_size: must not exceed adv.director.buffer_size (2048)"),
    (["seeds=-1"], "seeds: must be > 0"),
    (["seeds=abc"], "seeds: expected an integer"),
    (["total_steps=lots"], "total_steps: expected an integer"),
    (["total_steps=0"], "total_steps: must be > 0"),
    (["alg.lr=-0.1"], "alg.lr: must be > 0"),
    (["alg.gamma=1.5"], "alg.gamma: must lie in [0, 1]"),
    (["nonsense=1"], "nonsense: unknown key; known: adv, alg, attackers, checkpoint_every, env,"),
    (["alg.nonsense=1"], "alg.nonsense: unknown key; known under alg: batch_size, buffer_size,"),
    (["adv=atsa", "adv.director.nonsense=1"], "known under adv.director: alpha_anneal_steps,"),
    (["adv=atsa", "adv.kappa=0"], "adv.kappa: unknown key; did you mean adv.director.kappa? known under adv: "),
    (["seeds"], "seeds: expected key=value"),
]


@pytest.mark.parametrize("overrides,message", BAD)
def test_bad_override_one_line_no_run_dir(overrides, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(overrides + [f"run_dir={run_dir}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jarob.train: error: ") and message in err, err
    assert "\n" not in err
    assert not run_dir.exists()


def test_existing_run_dir_needs_resume(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "keep.txt").write_text("x")
    assert main([f"run_dir={run_dir}"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert os.listdir(run_dir) == ["keep.txt"]


def test_resume_without_checkpoint(tmp_path, capsys):
    assert main([f"run_dir={tmp_path / 'missing'}", "resume=true"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([f"run_dir={tmp_path / 'empty'}", "resume=true"]) == 2
    assert "has no checkpoint" in capsys.readouterr().err
    assert os.listdir(tmp_path / "empty") == []


def test_module_entry_point_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "jarob.train", "env=nope", f"run_dir={tmp_path / 'r'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "env: unknown 'nope'" in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "r").exists()
