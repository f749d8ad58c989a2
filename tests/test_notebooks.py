"""notebooks/quickstart.ipynb runs top to bottom on CPU (as CI runs it), quickly, and keeps its widget."""

import json
import pathlib
import shutil
import time

import pytest

from daam_widget.toy._flux_model import WEIGHTS as FLUX_WEIGHTS
from tests.browser.jupyter import REPO, scratch_env

NOTEBOOKS = REPO / "notebooks"


def execute(name, tmp_path, monkeypatch):
    """Run notebooks/NAME top to bottom in a fresh kernel in ``tmp_path``: the notebook and the seconds."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for key, value in scratch_env(tmp_path / "jupyter").items():
        monkeypatch.setenv(key, value)
    shutil.copy(NOTEBOOKS / name, tmp_path)
    notebook = nbformat.read(tmp_path / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    print(f"\n{name}: {seconds:.1f} s")
    outputs = json.dumps([cell.get("outputs", []) for cell in notebook.cells])
    assert "application/vnd.jupyter.widget-view+json" in outputs and '"output_type": "error"' not in outputs
    return notebook, seconds


def widget_states(notebook):
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [m["state"] for m in state.values() if m["state"].get("_anywidget_id", "").endswith("DaamWidget")]


def test_quickstart_runs_on_cpu_in_under_a_minute_and_keeps_its_widget_state(tmp_path, monkeypatch):
    notebook, seconds = execute("quickstart.ipynb", tmp_path, monkeypatch)
    assert seconds < 90, "the quickstart should take under a minute on CPU (90 s allowed for a busy machine)"
    (daam,) = widget_states(notebook)
    assert daam["prompt"] == "a big purple diamond and a small orange circle"
    assert (tmp_path / "daam-quickstart.html").exists()


@pytest.mark.skipif(not (FLUX_WEIGHTS / "model_index.json").exists(), reason="no toy transformer weights")
def test_the_map_methods_notebook_runs_on_cpu_and_shows_concept_maps(tmp_path, monkeypatch):
    notebook, seconds = execute("which-map.ipynb", tmp_path, monkeypatch)
    assert seconds < 90
    (daam,) = widget_states(notebook)
    assert daam["map_kind"] == "concepts"
    assert daam["concepts"] == ["yellow", "circle", "orange", "square", "green", "triangle"]


def test_the_video_notebook_runs_on_cpu_plays_its_clips_and_writes_an_animation(tmp_path, monkeypatch):
    notebook, seconds = execute("video.ipynb", tmp_path, monkeypatch)
    assert seconds < 90
    traced, made_up = widget_states(notebook)
    assert (traced["latent_frames"], len(traced["frame_sources"])) == (3, 5)
    assert (made_up["latent_frames"], len(made_up["frame_sources"])) == (13, 49)
    assert (tmp_path / "daam-dog.gif").exists()


def test_notebooks_are_valid_and_saved_without_outputs():
    nbformat = pytest.importorskip("nbformat")
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), path.name
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} >= {
        "quickstart.ipynb",
        "stable-diffusion.ipynb",
        "which-map.ipynb",
    }


def test_the_stable_diffusion_notebook_loads_real_models_from_the_hub():
    source = pathlib.Path(NOTEBOOKS / "stable-diffusion.ipynb").read_text()
    for needle in (
        "stabilityai/stable-diffusion-2-1-base",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "from_pretrained",
        '.to(\\"cuda\\")',
    ):
        assert needle in source, needle


def test_the_readmes_quickstart_runs_as_written():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quickstart = readme[readme.index("## Quickstart") :]
    start = quickstart.index("```python\n") + len("```python\n")
    code = quickstart[start : quickstart.index("\n```", start)]
    scope: dict = {}
    exec(compile(code, "README.md quickstart", "exec"), scope)
    maps = scope["maps"]
    assert maps["circle"].shape == (64, 64) and 0 < maps.mask("circle", tau=0.4).mean() < 0.5
