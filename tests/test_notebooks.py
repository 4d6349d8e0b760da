"""The notebooks in notebooks/: committed without outputs, and each runs top to bottom with the
tiny budget (JAROB_NOTEBOOK_BUDGET=tiny) in a fresh kernel of this environment."""

import pathlib
import re

import nbformat
import pytest

ROOT = pathlib.Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def repository():
    """owner/name of the repository, from pyproject.toml's [project.urls] Repository."""
    return re.search(r'^Repository = "https://github.com/([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def colab_badge(path):
    return f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{repository()}/blob/main/notebooks/{path.name})"


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:1] == ["01_quickstart.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_links_are_built_from_the_repository_path(path):
    """The notebook opens with its Colab badge, installs jarob from the repository when it is not
    installed, and the README links it both ways (the file, and the badge)."""
    nb = nbformat.read(path, as_version=4)
    assert colab_badge(path) in nb.cells[0].source
    assert f'"jarob @ git+https://github.com/{repository()}"' in nb.cells[1].source
    readme = (ROOT / "README.md").read_text()
    assert colab_badge(path) in readme and f"(notebooks/{path.name})" in readme


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear its outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("JAROB_NOTEBOOK_BUDGET", "tiny")
    monkeypatch.setenv("JAROB_NOTEBOOK_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    # The kernel inherits this process's environment: the suite's XLA flags and compilation cache.
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
