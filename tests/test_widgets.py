"""mvf.widgets: each explorer builds and draws with the ipywidgets installed (7.7 on Colab, 8 here).

``make lowest`` runs this file again under ipywidgets 7.7 (see the README).
"""

import ipywidgets
import matplotlib
import numpy as np
import pytest

from mvf import activations, interventions, models, probes, tasks, tokens, widgets

matplotlib.use("Agg")


def _controls(widget) -> dict[str, object]:
    return {child.description: child for child in widget.children if getattr(child, "description", "")}


def test_the_reducibility_explorer_redraws_when_a_slider_moves(monkeypatch):
    drawn = []
    monkeypatch.setattr(widgets.plots, "reducibility_panels", lambda points, axes, title="": drawn.append(points.shape))
    explorer = widgets.reducibility_explorer(n=256)
    assert set(_controls(explorer)) == {"noise", "line weight", "radius"}
    # ipywidgets 8 draws when the explorer is built, 7 when it is first displayed: draw as a display would.
    drawn.clear()
    explorer.update()
    _controls(explorer)["noise"].value = 0.2
    assert drawn == [(256, 2)] * 2, f"ipywidgets {ipywidgets.__version__}: moving a slider did not redraw"


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
    monkeypatch.setattr(widgets.plt, "show", lambda: shown.append(widgets.plt.gcf().axes[0].patches[0].get_height()))
    problems = tasks.task("weekdays")
    hook = "blocks.2.hook_resid_pre"
    where = np.array([tasks.positions(control.tokenizer, p, tokens.prepends_bos(control))["final"] for p in problems])
    clean = activations.collect_at_positions(control, [p.prompt for p in problems], where, [hook])[hook].numpy()
    probe = probes.fit_circle_probe(clean.astype(np.float64), interventions.read_values(problems, "final"), 7)
    slider = widgets.circle_slider(control, problems[0], probe, hook, int(where[0]), clean.mean(axis=0))
    assert set(_controls(slider)) == {"angle (°)", "radius"}
    shown.clear()
    slider.update()
    # At angle 0 the probe's point is Monday's: the control answers Monday.
    assert len(shown) == 1 and shown[0] > 0.5
