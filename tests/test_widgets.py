"""mvf.widgets: each explorer builds and draws with the ipywidgets installed (7.7 on Colab, 8 here).

``make lowest`` runs this file again under ipywidgets 7.7 (see the README).
"""

import ipywidgets
import matplotlib
import numpy as np
import pytest

from mvf import activations, interventions, models, probes, tasks, tokens, widgets
from mvf.book.regression import WIDGET

matplotlib.use("Agg")


def _controls(widget) -> dict[str, object]:
    return {child.description: child for child in widget.children if getattr(child, "description", "")}


def test_the_reducibility_explorer_redraws_when_a_slider_moves(monkeypatch):
    drawn = []
    monkeypatch.setattr(widgets.plots, "reducibility_panels", lambda points, axes, title="": drawn.append(points.shape))
    monkeypatch.setattr(widgets, "png", lambda figure: f"drawing {len(drawn)}".encode())
    explorer = widgets.reducibility_explorer(n=256)
    assert set(_controls(explorer)) == {"noise", "line weight", "radius"}
    assert drawn == [(256, 2)], "the explorer was not drawn when built"
    image = explorer.children[-1].value
    _controls(explorer)["noise"].value = 0.2
    assert drawn == [(256, 2)] * 2, f"ipywidgets {ipywidgets.__version__}: moving a slider did not redraw"
    assert explorer.children[-1].value != image, "the redrawn figure did not reach the image"


def test_no_explorer_holds_an_output_widget():
    """An Output widget makes a front-end-less client (papermill) send on the shell socket mid-cell (mvf.widgets)."""
    generator = np.random.default_rng(0)
    labels = np.arange(70) % 7
    layers = {f"blocks.{i}.hook_resid_post": generator.normal(size=(70, 8)) for i in range(2)}
    built = [widgets.reducibility_explorer(n=128), widgets.layer_explorer(layers, labels, [f"d{i}" for i in range(7)])]

    def parts(widget):
        yield widget
        for child in getattr(widget, "children", ()):
            yield from parts(child)

    found = [type(part).__name__ for explorer in built for part in parts(explorer) if isinstance(part, ipywidgets.Output)]
    assert not found, f"an explorer holds {found}"


def test_the_layer_explorer_offers_every_layer():
    generator = np.random.default_rng(0)
    labels = np.arange(70) % 7
    layers = {f"blocks.{i}.hook_resid_post": generator.normal(size=(70, 8)) for i in range(4)}
    explorer = widgets.layer_explorer(layers, labels, [f"d{i}" for i in range(7)])
    slider = explorer.children[0]
    assert (slider.min, slider.max, slider.value) == (0, 3, 1)


@pytest.fixture(scope="module")
def control():
    return models.load_model("circle-control", device="cpu")


def test_the_circle_slider_draws_the_models_answers(control, monkeypatch):
    shown = []
    monkeypatch.setattr(widgets, "png", lambda figure: shown.append(figure.axes[0].patches[0].get_height()) or b"")
    problems = tasks.task("weekdays")
    hook = "blocks.2.hook_resid_pre"
    where = np.array([tasks.positions(control.tokenizer, p, tokens.prepends_bos(control))["final"] for p in problems])
    clean = activations.collect_at_positions(control, [p.prompt for p in problems], where, [hook])[hook].numpy()
    probe = probes.fit_circle_probe(clean.astype(np.float64), interventions.read_values(problems, "final"), 7)
    slider = widgets.circle_slider(control, problems[0], probe, hook, int(where[0]), clean.mean(axis=0))
    assert set(_controls(slider)) == {"angle (°)", "radius"}
    # At angle 0 the probe's point is Monday's: the control answers Monday.
    assert len(shown) == 1 and shown[0] > 0.5


def test_plain_papermill_runs_an_explorer_three_times_without_hanging(tmp_path):
    """Plain papermill (no cell timeout) on the definitions chapter's explorer; built through an Output widget, 1 of 5
    such runs hung (bench/papermill_widgets.py). A hang fails here after 120 s instead of hanging the suite."""
    import subprocess
    import sys
    from pathlib import Path

    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from mvf import widgets"),
                                         nbformat.v4.new_code_cell("widgets.reducibility_explorer(n=512)")])  # fmt: skip
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "explorer.ipynb")
    papermill = Path(sys.executable).with_name("papermill")
    for run in range(3):
        try:
            subprocess.run([str(papermill), "--no-progress-bar", "explorer.ipynb", f"out-{run}.ipynb"], cwd=tmp_path,
                           check=True, capture_output=True, timeout=120)  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail(f"plain papermill hung on an explorer (run {run + 1} of 3)")
        shown = nbformat.read(tmp_path / f"out-{run}.ipynb", as_version=4).cells[1].outputs
        assert any(WIDGET in output.get("data", {}) for output in shown), "the explorer was not displayed"
