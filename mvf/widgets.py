"""ipywidgets explorers. Each needs a running kernel; chapters show a static figure beside it."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from mvf import plots, synthetic


def reducibility_explorer(n: int = 2048, seed: int = 0) -> widgets.Widget:
    """Sliders for noise, mixture weight and radius of a circle-plus-line cloud; S and M recomputed live."""

    def redraw(noise: float, weight: float, radius: float) -> None:
        points = synthetic.circle_with_lines(n, np.random.default_rng(seed), weight=weight, noise=noise, radius=radius)
        figure, axes = plt.subplots(1, 3, figsize=(12, 3.4))
        plots.reducibility_panels(points, tuple(axes), title=f"circle + line ({weight:.0%} on the line)")
        figure.tight_layout()
        plt.show()

    return widgets.interactive(
        redraw,
        noise=widgets.FloatSlider(value=0.05, min=0.0, max=0.5, step=0.01, description="noise"),
        weight=widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="line weight"),
        radius=widgets.FloatSlider(value=1.0, min=0.2, max=3.0, step=0.1, description="radius"),
    )
