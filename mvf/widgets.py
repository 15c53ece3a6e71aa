"""ipywidgets explorers. Each needs a running kernel; chapters show a static figure beside it.

Each explorer is its controls above an ``Image`` widget holding the drawn PNG,
redrawn when a control moves. Not ``widgets.interactive``: that captures the
drawing in an ``Output`` widget, and a kernel client without a front end
(nbclient, so papermill and Jupyter Book) mirrors every captured output back
to the kernel by *sending* on the shell socket while it waits on that same
socket for the cell's reply. A send on a zmq socket can consume the edge of its
file descriptor that announced the reply, and the client then waits for a
reply already there: for ever under papermill, whose cells have no timeout
(``python bench/papermill_widgets.py`` runs an explorer built both ways under
plain papermill and counts the runs that hang). With no ``Output`` widget the
client never sends while a cell runs.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from mvf import geometry, plots, synthetic


def png(figure: Figure) -> bytes:
    """``figure`` as PNG bytes at the book's resolution; the figure is closed (an explorer draws many)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def explorer(draw: Callable[..., Figure], **controls: widgets.ValueWidget) -> widgets.VBox:
    """``controls`` above the figure ``draw(**their values)``, drawn now and again whenever a control's value changes.

    The figure is an ``Image`` widget (see the module's docstring for why not ``widgets.interactive``).
    """
    image = widgets.Image(format="png")

    def redraw(_change: object = None) -> None:
        image.value = png(draw(**{name: control.value for name, control in controls.items()}))

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([*controls.values(), image])


def reducibility_explorer(n: int = 2048, seed: int = 0) -> widgets.VBox:
    """Sliders for noise, mixture weight and radius of a circle-plus-line cloud; S and M recomputed live."""

    def draw(noise: float, weight: float, radius: float) -> Figure:
        points = synthetic.circle_with_lines(n, np.random.default_rng(seed), weight=weight, noise=noise, radius=radius)
        figure, axes = plots.panels(3, row_height=2.6, columns=3)
        plots.reducibility_panels(points, tuple(axes), title=f"circle + line ({weight:.0%} on the line)")
        figure.tight_layout()
        return figure

    return explorer(
        draw,
        noise=widgets.FloatSlider(value=0.05, min=0.0, max=0.5, step=0.01, description="noise"),
        weight=widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="line weight"),
        radius=widgets.FloatSlider(value=1.0, min=0.2, max=3.0, step=0.1, description="radius"),
    )


def layer_explorer(activations: dict[str, np.ndarray], labels: np.ndarray, names: Sequence[str]) -> widgets.VBox:
    """A layer slider over ``{hook: (n, d_model)}``: centroid circle and all points in PCA, redrawn per layer."""
    hooks = list(activations)

    def draw(layer: int) -> Figure:
        points = activations[hooks[layer]]
        _, plane = geometry.centroid_plane(points, labels, len(names))
        figure, (left, right) = plots.panels(2, row_height=3.6)
        plots.centroid_circle(plane, names, left, title=f"layer {layer}: centroids")
        plots.labelled_points(PCA(n_components=2).fit_transform(points), labels, names, right, title="all points")
        figure.tight_layout()
        return figure

    return explorer(draw, layer=widgets.IntSlider(value=len(hooks) // 4, min=0, max=len(hooks) - 1, description="layer"))


def cluster_browser(table, codes, decoder: np.ndarray, labels: np.ndarray, strings: Sequence[str]) -> widgets.VBox:
    """Pick a ranked cluster: its four consecutive PCA planes, S, M and top tokens."""
    from mvf import discovery

    def draw(cluster: int) -> Figure:
        tokens, projected = discovery.cluster_projection(codes, decoder, labels, cluster)
        row = table.set_index("cluster").loc[cluster]
        figure, axes = plots.panels(projected.shape[1] - 1, row_height=3.2)
        for pair, ax in enumerate(axes):
            plots.cluster_panel(projected, [strings[t] for t in tokens], (pair, pair + 1), ax)
        figure.suptitle(f"cluster {cluster}: {row['features']} features, S={row['S']:.2f}, M={row['M']:.2f}; {row['top tokens']}")
        figure.tight_layout()
        return figure

    options = [(f"#{rank + 1}: cluster {c} (score {s:.2f})", int(c)) for rank, (c, s) in enumerate(zip(table["cluster"], table["score"]))]
    return explorer(draw, cluster=widgets.Dropdown(options=options, description="cluster"))


def circle_slider(model, problem, probe, hook: str, position: int, base: np.ndarray) -> widgets.VBox:
    """Angle and radius sliders for the patched circle point; the model's answer distribution redrawn live."""
    from mvf import interventions

    def draw(angle: float, radius: float) -> Figure:
        probabilities = interventions.off_circle(model, problem, probe, hook, position, base, np.radians([angle]), radius)[0]
        figure, ax = plt.subplots(figsize=(plots.PAGE_WIDTH_IN, 3))
        ax.bar([n[:3] for n in problem.names], probabilities, color=plots.calendar_colours(len(problem.names)))
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"{problem.prompt!r} with the point at {angle:.0f}°, radius {radius:.2f}")
        return figure

    return explorer(
        draw,
        angle=widgets.FloatSlider(value=0, min=0, max=360, step=5, description="angle (°)"),
        radius=widgets.FloatSlider(value=1.0, min=0.0, max=1.9, step=0.05, description="radius"),
    )
