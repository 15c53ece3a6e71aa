"""ipywidgets explorers. Each needs a running kernel; chapters show a static figure beside it."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA

from mvf import geometry, plots, synthetic


def reducibility_explorer(n: int = 2048, seed: int = 0) -> widgets.Widget:
    """Sliders for noise, mixture weight and radius of a circle-plus-line cloud; S and M recomputed live."""

    def redraw(noise: float, weight: float, radius: float) -> None:
        points = synthetic.circle_with_lines(n, np.random.default_rng(seed), weight=weight, noise=noise, radius=radius)
        figure, axes = plots.panels(3, row_height=2.6, columns=3)
        plots.reducibility_panels(points, tuple(axes), title=f"circle + line ({weight:.0%} on the line)")
        figure.tight_layout()
        plt.show()

    return widgets.interactive(
        redraw,
        noise=widgets.FloatSlider(value=0.05, min=0.0, max=0.5, step=0.01, description="noise"),
        weight=widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="line weight"),
        radius=widgets.FloatSlider(value=1.0, min=0.2, max=3.0, step=0.1, description="radius"),
    )


def layer_explorer(activations: dict[str, np.ndarray], labels: np.ndarray, names: Sequence[str]) -> widgets.Widget:
    """A layer slider over ``{hook: (n, d_model)}``: centroid circle and all points in PCA, redrawn per layer."""
    hooks = list(activations)

    def redraw(layer: int) -> None:
        points = activations[hooks[layer]]
        _, plane = geometry.centroid_plane(points, labels, len(names))
        figure, (left, right) = plots.panels(2, row_height=3.6)
        plots.centroid_circle(plane, names, left, title=f"{hooks[layer]}: centroids")
        plots.labelled_points(PCA(n_components=2).fit_transform(points), labels, names, right, title="all points")
        figure.tight_layout()
        plt.show()

    return widgets.interactive(redraw, layer=widgets.IntSlider(value=len(hooks) // 4, min=0, max=len(hooks) - 1))


def cluster_browser(table, codes, decoder: np.ndarray, labels: np.ndarray, strings: Sequence[str]) -> widgets.Widget:
    """Pick a ranked cluster: its four consecutive PCA planes, S, M and top tokens."""
    from mvf import discovery

    def redraw(cluster: int) -> None:
        tokens, projected = discovery.cluster_projection(codes, decoder, labels, cluster)
        row = table.set_index("cluster").loc[cluster]
        figure, axes = plots.panels(projected.shape[1] - 1, row_height=3.2)
        for pair, ax in enumerate(axes):
            plots.cluster_panel(projected, [strings[t] for t in tokens], (pair, pair + 1), ax)
        figure.suptitle(f"cluster {cluster}: {row['features']} features, S={row['S']:.2f}, M={row['M']:.2f}; {row['top tokens']}")
        figure.tight_layout()
        plt.show()

    options = [(f"#{rank + 1}: cluster {c} (score {s:.2f})", int(c)) for rank, (c, s) in enumerate(zip(table["cluster"], table["score"]))]
    return widgets.interactive(redraw, cluster=widgets.Dropdown(options=options, description="cluster"))


def circle_slider(model, problem, probe, hook: str, position: int, base: np.ndarray) -> widgets.Widget:
    """Angle and radius sliders for the patched circle point; the model's answer distribution redrawn live."""
    from mvf import interventions

    def redraw(angle: float, radius: float) -> None:
        probabilities = interventions.off_circle(model, problem, probe, hook, position, base, np.radians([angle]), radius)[0]
        figure, ax = plt.subplots(figsize=(plots.PAGE_WIDTH_IN, 3))
        ax.bar([n[:3] for n in problem.names], probabilities, color=plots.calendar_colours(len(problem.names)))
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"{problem.prompt!r} with the point at {angle:.0f}°, radius {radius:.2f}")
        plt.show()

    return widgets.interactive(
        redraw,
        angle=widgets.FloatSlider(value=0, min=0, max=360, step=5, description="angle (°)"),
        radius=widgets.FloatSlider(value=1.0, min=0.0, max=1.9, step=0.05, description="radius"),
    )
