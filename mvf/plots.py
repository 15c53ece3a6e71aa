"""Figure helpers: one function per figure type, consistent colours and labels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mvf import metrics

POINT_COLOUR = "#3b6ea8"
BAND_COLOUR = "#e07b39"


def reducibility_panels(points: np.ndarray, axes: tuple[Axes, Axes, Axes], title: str = "") -> None:
    """Draw the paper's Figure 2 row for one plane ``(n, 2)`` on three axes.

    Left: the points with the best ε-mixture band; middle: histogram of the
    normalised projection z with ±ε marked; right: mutual information over the
    rotation angle with its minimum (S) marked.
    """
    fit = metrics.best_mixture(points)
    curve = metrics.mutual_information_curve(points)
    scatter, histogram, information = axes

    scatter.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, color=POINT_COLOUR, rasterized=True)
    _draw_band(scatter, points, fit)
    scatter.set_aspect("equal", adjustable="datalim")
    scatter.set_xlabel("$x_1$")
    scatter.set_ylabel("$x_2$")
    scatter.set_title(title)

    limit = max(4 * fit.epsilon, np.quantile(np.abs(fit.z), 0.99))
    histogram.hist(fit.z, bins=np.linspace(-limit, limit, 81), color=POINT_COLOUR)
    for edge in (-fit.epsilon, fit.epsilon):
        histogram.axvline(edge, color=BAND_COLOUR, linestyle="--", linewidth=1)
    histogram.set_xlabel("normalised projection $z$")
    histogram.set_ylabel("points")
    histogram.set_title(f"$M_\\epsilon$ = {fit.index:.3f}")

    information.plot(curve.angles, curve.bits, color=POINT_COLOUR)
    information.scatter([curve.best_angle], [curve.separability], color=BAND_COLOUR, zorder=3)
    information.set_xlabel("rotation angle θ (radians)")
    information.set_ylabel("mutual information (bits)")
    information.set_ylim(bottom=0)
    information.set_title(f"$S$ = {curve.separability:.3f} bits")


def _draw_band(ax: Axes, points: np.ndarray, fit: metrics.MixtureFit) -> None:
    """Shade the strip of points with |z| < ε: the best mixture line and its band."""
    shifted = points @ fit.direction + fit.offset
    half_width = fit.epsilon * np.sqrt(np.mean(shifted**2))
    inside = np.abs(fit.z) < fit.epsilon
    ax.scatter(points[inside, 0], points[inside, 1], s=2, color=BAND_COLOUR, rasterized=True, label="inside band")
    along = np.array([-fit.direction[1], fit.direction[0]])
    foot = -fit.offset * fit.direction
    extent = np.abs((points - points.mean(axis=0)) @ along).max()
    centre = foot + along * ((points.mean(axis=0) - foot) @ along)
    ends = centre + np.outer([-extent, extent], along)
    for side in (-half_width, half_width):
        edge = ends + side * fit.direction
        ax.plot(edge[:, 0], edge[:, 1], color=BAND_COLOUR, linewidth=1)


def reducibility_figure(named_points: dict[str, np.ndarray]) -> Figure:
    """One Figure 2 row per named plane ``(n, 2)``."""
    figure, axes = plt.subplots(len(named_points), 3, figsize=(12, 3.2 * len(named_points)), squeeze=False)
    for row, (name, points) in zip(axes, named_points.items()):
        reducibility_panels(points, tuple(row), title=name)
    figure.tight_layout()
    return figure
