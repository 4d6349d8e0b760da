"""The README's set-up commands are what CI runs, and configs ship inside the package."""

from pathlib import Path

from jarob.config import config_dir, group_options

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text):
    blocks, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if inside:
            blocks.append(line)
    return blocks


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = _bash_blocks(setup)
    assert len(commands) == 2
    assert commands[0].endswith("python -m jarob.train")
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_configs_are_found_through_the_package():
    assert Path(config_dir(), "config.yaml").exists()
    assert "smax_3m" in group_options("env") and {"qmix", "vdn"} <= set(group_options("alg"))
