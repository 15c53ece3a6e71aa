"""Figure helpers: one function per figure type, consistent colours and labels."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, hsv_to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import ScaledTranslation

from mvf import metrics
from mvf.dates import DAYS
from mvf.interventions import NULLS

POINT_COLOUR = "#3b6ea8"
BAND_COLOUR = "#e07b39"
UNSURE_GREY = 0.55
# The book's output column is 688 px wide at a 1280 px window. A figure at most PAGE_WIDTH_IN wide at 150 dpi is
# shrunk to it by at most 1050/688, so 10 pt text lands at 13.6 px or more: over 80 % of the body text's 16 px.
PAGE_WIDTH_IN = 7.0
MIN_FONT_PT = 10
STYLE = {"figure.dpi": 150, "savefig.dpi": 150, "font.size": MIN_FONT_PT, "axes.titlesize": MIN_FONT_PT + 1,
         "axes.labelsize": MIN_FONT_PT, "xtick.labelsize": MIN_FONT_PT, "ytick.labelsize": MIN_FONT_PT,
         "legend.fontsize": MIN_FONT_PT, "legend.title_fontsize": MIN_FONT_PT, "figure.titlesize": MIN_FONT_PT + 1,
         "figure.figsize": (PAGE_WIDTH_IN, 3.0)}  # fmt: skip
plt.rcParams.update(STYLE)
# Where a notebook without the book's copy of plotly.js fetches it (Jupyter, Colab); the version plotly.py draws with.
PLOTLY_CDN = "https://cdn.plot.ly/plotly-{version}.min.js"


def plotly_html(figure: go.Figure) -> HTML:
    """An interactive figure as a cell's HTML output, without plotly.js's 4.6 MB inside it.

    The built book loads plotly.js once per page (:mod:`mvf.book.plotly_static`), so the figure draws offline;
    in Jupyter or Colab (where each output may be a frame of its own) the figure fetches plotly.js from plotly's CDN
    when the page has none, and says so in place of the figure when it cannot.
    """
    import uuid

    from plotly.offline import get_plotlyjs_version

    div = str(uuid.uuid4())
    html = figure.to_html(include_plotlyjs=False, full_html=False, div_id=div)
    head, script = html.rsplit("<script>", 1)
    draw, tail = script.split("</script>", 1)
    where = f'document.getElementById("{div}")'
    # After the page's deferred scripts (the book's plotly.js) have run; at once in a live notebook.
    loader = (f"(function () {{ var draw = function () {{ {draw} }};"
              " var start = function () { if (window.Plotly) { draw(); return; }"
              f' var script = document.createElement("script"); script.src = "{PLOTLY_CDN.format(version=get_plotlyjs_version())}";'
              f" script.onload = draw; script.onerror = function () {{ {where}.textContent ="
              ' "This interactive figure needs plotly.js, which could not be loaded (no network?)."; };'
              " document.head.appendChild(script); };"
              ' if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }'
              " else { start(); } })();")  # fmt: skip
    return HTML(f"{head}<script>{loader}</script>{tail}")


def panels(n: int, row_height: float = 2.9, columns: int = 2, **subplots) -> tuple[Figure, list[Axes]]:
    """A figure of the page's width holding ``n`` panels, ``columns`` to a row (more panels make more rows).

    ``subplots``: passed to ``plt.subplots`` (``sharey=True``, …). Returns
    the figure and its ``n`` axes in reading order; unused cells are removed.
    """
    columns = min(columns, n)
    rows = -(-n // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(PAGE_WIDTH_IN, row_height * rows), squeeze=False, **subplots)
    for ax in grid.flat[n:]:
        ax.remove()
    return figure, list(grid.flat[:n])


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
    figure, axes = panels(3 * len(named_points), row_height=2.6, columns=3)
    for start, (name, points) in zip(range(0, len(axes), 3), named_points.items()):
        reducibility_panels(points, tuple(axes[start:start + 3]), title=name)
    figure.tight_layout()
    return figure


def calendar_colours(n_classes: int) -> np.ndarray:
    """Hues evenly round the colour wheel at the calendar positions: ``(n_classes, 4)`` RGBA.

    Cyclic like the calendar, and at one saturation and value so that no class is near white (``twilight`` draws
    Monday and January near white) and 12 neighbours stay apart. Seven classes are the weekdays: their hues sit
    between the months' and are deeper, so that no day shares a colour with a month (Monday and January were one red).
    """
    days = n_classes == len(DAYS)
    hue = np.arange(n_classes) / n_classes + (1 / 24 if days else 0.0)
    saturation, value = (1.0, 0.55) if days else (0.8, 0.8)
    hsv = np.stack([hue % 1, np.full(n_classes, saturation), np.full(n_classes, value)], axis=1)
    return np.column_stack([hsv_to_rgb(hsv), np.ones(n_classes)])


def legend_below(ax: Axes, ncol: int = 3, **legend) -> None:
    """The axes' legend under its x label, off the data (``tight_layout`` and the saved figure make room for it).

    Placed a fixed 36 points under the axes (the tick labels and the x label take about 30), not a fraction of
    their height, which ``tight_layout`` shrinks to fit the legend in.
    """
    below = ax.transAxes + ScaledTranslation(0, -36 / 72, ax.figure.dpi_scale_trans)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below, ncol=ncol, frameon=False,
              **{"columnspacing": 0.8, "handletextpad": 0.4, "handlelength": 1.5} | legend)


def _plotly_colours(n_classes: int) -> list[str]:
    return [f"rgb({r},{g},{b})" for r, g, b, _ in (255 * calendar_colours(n_classes)).astype(int)]


def centroid_circle(plane: np.ndarray, names: Sequence[str], ax: Axes, title: str = "") -> None:
    """Class centroids ``(p, 2)`` in a PCA plane, labelled and joined in calendar order."""
    colours = calendar_colours(len(names))
    loop = np.vstack([plane, plane[:1]])
    ax.plot(loop[:, 0], loop[:, 1], color="0.7", linewidth=1, zorder=1)
    ax.scatter(plane[:, 0], plane[:, 1], c=colours, s=80, edgecolors="black", zorder=2)
    for (x, y), name in zip(plane, names):
        ax.annotate(name[:3], (x, y), textcoords="offset points", xytext=(5, 5))
    ax.set_xlabel("PC 1 of the centroids")
    ax.set_ylabel("PC 2 of the centroids")
    ax.set_title(title)


def labelled_points(plane: np.ndarray, labels: np.ndarray, names: Sequence[str], ax: Axes, title: str = "") -> None:
    """Every point ``(n, 2)`` coloured by its calendar label."""
    colours = calendar_colours(len(names))
    for index, name in enumerate(names):
        chosen = labels == index
        ax.scatter(plane[chosen, 0], plane[chosen, 1], s=12, color=colours[index], label=name[:3])
    ax.set_xlabel("PC 1 of all points")
    ax.set_ylabel("PC 2 of all points")
    legend_below(ax, ncol=4, markerscale=1.5, handlelength=1.0)
    ax.set_title(title)


def layer_scores(scores: dict[str, pd.DataFrame]) -> Figure:
    """Per-layer cyclic-order score and variance explained by two PCs, one line per named table."""
    figure, (order_ax, variance_ax) = panels(2, row_height=3.4)
    for name, table in scores.items():
        layers = np.arange(len(table))
        order_ax.plot(layers, table["cyclic order"], marker="o", label=name)
        variance_ax.plot(layers, table["centroid var (2 PCs)"], marker="o", label=f"{name}: centroids")
        variance_ax.plot(layers, table["point var (2 PCs)"], linestyle="--", label=f"{name}: all points")
    order_ax.set_xlabel("layer (hook_resid_post)")
    order_ax.set_ylabel("share of calendar neighbours")
    order_ax.set_ylim(0, 1.05)
    order_ax.set_title("Do the centroids go round\nin calendar order?")  # two lines: clear of the next panel's label
    variance_ax.set_xlabel("layer (hook_resid_post)")
    variance_ax.set_ylabel("variance explained by 2 PCs")
    variance_ax.set_ylim(0, 1.05)
    variance_ax.set_title("How planar is\nthe representation?")
    for ax in (order_ax, variance_ax):
        legend_below(ax, ncol=1)
    figure.tight_layout()
    return figure


def _slider_steps(labels: Sequence[str], traces_per_step: int, titles: Sequence[str] | None = None,
                  always_shown: int = 0) -> list[dict]:  # fmt: skip
    """A plotly slider's steps, each showing only its own ``traces_per_step`` traces (added step after step, after
    ``always_shown`` traces every step keeps) and, with ``titles``, its own title.

    The title is set as ``title.text``: plotly.js 3 drops a title given as a bare string in a step's layout update.
    """
    steps = []
    for step, label in enumerate(labels):
        own = [trace // traces_per_step == step for trace in range(traces_per_step * len(labels))]
        visible = [True] * always_shown + own
        steps.append({"method": "update", "label": label,
                      "args": [{"visible": visible}] + ([{"title.text": titles[step]}] if titles is not None else [])})
    return steps


def centroid_slider(activations: dict[str, np.ndarray], labels: np.ndarray, names: Sequence[str], title: str = "",
                    start: int = 0) -> go.Figure:  # fmt: skip
    """A plotly figure with a layer slider: the class centroids in their own PCA plane, joined in calendar order.

    ``activations``: ``{hook: (n, d_model)}`` in layer order; ``labels``:
    ``(n,)`` calendar indices. Every layer's plane is computed here, so the
    slider works in a static page without a kernel. Each plane is scaled to
    its largest centroid radius, so the axes stay put as the slider moves.
    """
    from mvf.geometry import centroid_plane

    colours = _plotly_colours(len(names))
    figure = go.Figure()
    for layer, points in enumerate(activations.values()):
        _, plane = centroid_plane(points, labels, len(names))
        plane = plane / np.linalg.norm(plane, axis=1).max()
        loop = np.vstack([plane, plane[:1]])
        figure.add_trace(go.Scatter(x=loop[:, 0], y=loop[:, 1], mode="lines", line={"color": "#b3b3b3"},
                                    visible=layer == start, hoverinfo="skip", showlegend=False))  # fmt: skip
        figure.add_trace(go.Scatter(x=plane[:, 0], y=plane[:, 1], mode="markers+text", text=[n[:3] for n in names],
                                    textposition="top right", marker={"size": 12, "color": colours,
                                                                      "line": {"color": "black", "width": 1}},
                                    visible=layer == start, showlegend=False))  # fmt: skip
    titles = [f"{title} at layer {layer}: centroids in their PCA plane" for layer in range(len(activations))]
    steps = _slider_steps([str(layer) for layer in range(len(activations))], 2, titles)
    figure.update_layout(
        title=titles[start], height=520, width=None,
        sliders=[{"active": start, "currentvalue": {"prefix": "layer "}, "steps": steps}],
        xaxis={"range": [-1.35, 1.35], "title": "PC 1 of the centroids"},
        yaxis={"range": [-1.35, 1.35], "title": "PC 2 of the centroids", "scaleanchor": "x"},
        margin={"l": 50, "r": 20, "t": 50, "b": 20},
    )  # fmt: skip
    return figure


def points_slider(named_points: dict[str, np.ndarray], captions: dict[str, str], title: str = "") -> go.Figure:
    """A plotly figure with a slider over named point clouds ``(n, 2)``, each shown with its caption.

    Every cloud is drawn when the figure is built, so the slider works in a
    static page without a kernel; the axes are shared, so that the clouds
    can be compared as the slider moves.
    """
    figure = go.Figure()
    for index, points in enumerate(named_points.values()):
        # float32: plotly stores arrays as binary, and half the bytes keep every point where it is drawn.
        points = np.asarray(points, dtype=np.float32)
        figure.add_trace(go.Scattergl(x=points[:, 0], y=points[:, 1], mode="markers", visible=index == 0,
                                      marker={"size": 3, "color": POINT_COLOUR, "opacity": 0.5}, showlegend=False))  # fmt: skip
    names = list(named_points)
    steps = _slider_steps(names, 1, [f"{title}: {name}<br><sup>{captions[name]}</sup>" for name in names])
    extent = 1.1 * max(np.abs(points).max() for points in named_points.values())
    figure.update_layout(
        title=f"{title}: {names[0]}<br><sup>{captions[names[0]]}</sup>", height=560,
        sliders=[{"active": 0, "steps": steps, "currentvalue": {"visible": False}}],
        xaxis={"range": [-extent, extent], "title": "x₁"},
        yaxis={"range": [-extent, extent], "title": "x₂", "scaleanchor": "x"},
        margin={"l": 50, "r": 20, "t": 70, "b": 20},
    )  # fmt: skip
    return figure


def cluster_slider(clusters: dict[str, tuple[np.ndarray, Sequence[str]]], captions: dict[str, str],
                   prefix: str = "rank", max_points: int = 1000, seed: int = 0) -> go.Figure:  # fmt: skip
    """A plotly figure with a slider over clusters: each one's reconstructions on PCs 1–2 and 2–3, tokens on hover.

    ``clusters``: ``{label: (projected (m, k ≥ 2), token strings (m,))}``, as
    ``discovery.cluster_projection`` gives them; each label is a slider step,
    titled ``"{prefix} {label}"`` over its caption. Weekday and month tokens are
    drawn in their calendar colours, others grey. A cluster with more than
    ``max_points`` tokens shows a random ``max_points`` of them (drawn with
    ``seed``), so that the page stays small; the caption says how many.
    Every cluster is drawn when the figure is built: the slider needs no kernel.
    """
    from plotly.subplots import make_subplots

    from mvf.dates import DAYS, MONTHS

    colour_of = dict(zip(DAYS, _plotly_colours(len(DAYS)))) | dict(zip(MONTHS, _plotly_colours(len(MONTHS))))
    grey = "rgb(191,191,191)"  # cluster_panel's 0.75
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.12)
    names, titles = list(clusters), {}
    for index, (name, (projected, strings)) in enumerate(clusters.items()):
        if projected.ndim != 2 or projected.shape[1] < 2 or len(projected) != len(strings):
            raise ValueError(f"cluster {name!r}: expected points (m, k ≥ 2) and m strings; got {projected.shape} "
                             f"and {len(strings)} strings.")  # fmt: skip
        shown = np.arange(len(projected))
        if len(shown) > max_points:
            shown = np.sort(np.random.default_rng(seed).choice(len(projected), max_points, replace=False))
        # float32 coordinates (plotly stores arrays as binary); the other tokens in one grey trace, so that only the
        # calendar tokens carry a colour each, drawn last so that the grey cloud does not hide them.
        points = np.asarray(projected, dtype=np.float32)
        words = [strings[i].strip() for i in shown]
        calendar = np.array([word in colour_of for word in words], dtype=bool)
        parts = ((shown[~calendar], grey), (shown[calendar], [colour_of[word] for word in words if word in colour_of]))
        for column, (x, y) in enumerate(((0, 1), (1, 2)), start=1):
            if y >= projected.shape[1]:
                x, y = 0, 1
            for part, colour in parts:
                figure.add_trace(go.Scattergl(
                    x=points[part, x], y=points[part, y], mode="markers", text=[repr(strings[i]) for i in part],
                    hoverinfo="text", visible=index == 0, showlegend=False,
                    marker={"size": 5, "color": colour, "opacity": 0.8},
                ), row=1, col=column)  # fmt: skip
        sample = f"; {len(shown)} of {len(projected)} tokens drawn at random" if len(shown) < len(projected) else ""
        titles[name] = f"{prefix} {name}<br><sup>{captions[name]}{sample}</sup>"
    steps = _slider_steps(names, 4, [titles[name] for name in names])
    figure.update_layout(
        title=titles[names[0]], height=480, margin={"l": 50, "r": 20, "t": 80, "b": 20},
        sliders=[{"active": 0, "steps": steps, "currentvalue": {"prefix": f"{prefix} "}, "pad": {"t": 40}}],
    )  # fmt: skip
    figure.update_xaxes(title_text="PC 1", row=1, col=1)
    figure.update_yaxes(title_text="PC 2", row=1, col=1)
    figure.update_xaxes(title_text="PC 2", row=1, col=2)
    figure.update_yaxes(title_text="PC 3", row=1, col=2)
    return figure


def cluster_panel(projected: np.ndarray, strings: Sequence[str], pcs: tuple[int, int], ax: Axes, title: str = "") -> None:
    """A cluster's reconstructions on two PCs ``(m, ≥2)``, weekday / month tokens in cyclic colours, others grey."""
    from mvf.dates import DAYS, MONTHS

    x, y = projected[:, pcs[0]], projected[:, pcs[1]]
    words = [s.strip() for s in strings]
    ax.scatter(x, y, s=4, color="0.75", rasterized=True)
    for names, marker in ((DAYS, "^"), (MONTHS, "o")):
        colours = calendar_colours(len(names))
        for index, name in enumerate(names):
            chosen = np.array([w == name for w in words])
            if chosen.any():
                ax.scatter(x[chosen], y[chosen], s=14, color=colours[index], marker=marker, label=name[:3])
    ax.set_xlabel(f"PC {pcs[0] + 1}")
    ax.set_ylabel(f"PC {pcs[1] + 1}")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        legend_below(ax, ncol=4, markerscale=1.5, handlelength=1.0)


def probe_quality(table: pd.DataFrame) -> Figure:
    """Held-out R² and angular error of the circle and linear probes per layer (rows of ``table``)."""
    figure, (r2_ax, error_ax) = panels(2, row_height=3.4)
    layers = np.arange(len(table)) if "layer" not in table else table["layer"]
    for kind in ("circle", "linear"):
        r2_ax.plot(layers, table[f"{kind} R2"], marker="o", label=f"{kind} probe")
        error_ax.plot(layers, np.degrees(table[f"{kind} angular error"]), marker="o", label=f"{kind} probe")
    if "shuffled R2 (max)" in table:
        r2_ax.plot(layers, table["shuffled R2 (max)"], linestyle="--", color="0.5", label="circle probe, shuffled orders (max)")
    r2_ax.set_ylabel("held-out R²")
    r2_ax.set_title("How well a rank-k probe predicts the value")
    error_ax.set_ylabel("mean angular error (degrees)")
    error_ax.set_title("Angular error of the predicted value")
    for ax in (r2_ax, error_ax):
        ax.set_xlabel("layer")
        legend_below(ax, ncol=1)
    figure.tight_layout()
    return figure


# Methods drawn in the interventions figures: the paper's in solid lines, the nulls dotted.
_METHOD_STYLE = {"before": ("0.35", "-"), "full patch": ("#1b9e77", "-"), "circle patch": ("#d95f02", "-"),
                 "mean ablation": ("#7570b3", "-"), NULLS[0]: ("#e7298a", ":"), NULLS[1]: ("#66a61e", ":")}  # fmt: skip


def accuracy_against_chance(accuracy: pd.DataFrame, chance: pd.Series) -> Figure:
    """Accuracy among the allowed answers per task, a bar per model, with chance marked on each task.

    ``accuracy``: tasks × models; ``chance``: per task (``1/p``).
    """
    figure, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 3.2))
    tasks = list(accuracy.index)
    width = 0.8 / len(accuracy.columns)
    for index, (name, colour) in enumerate(zip(accuracy.columns, ("#1b9e77", "#d95f02", "#7570b3", "#e7298a"))):
        ax.bar(np.arange(len(tasks)) + (index - (len(accuracy.columns) - 1) / 2) * width, accuracy[name], width,
               color=colour, label=name)  # fmt: skip
    ax.hlines(chance.loc[tasks], np.arange(len(tasks)) - 0.45, np.arange(len(tasks)) + 0.45, color="black",
              linestyle="--", linewidth=1.2, zorder=3, label="chance (1/p)")  # fmt: skip
    ax.set_xticks(np.arange(len(tasks)), tasks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy among allowed answers")
    legend_below(ax, ncol=3)
    figure.tight_layout()
    return figure


def intervention_effects(table: pd.DataFrame) -> Figure:
    """Logit difference (with its 95 % interval) and new-answer accuracy per layer: the paper's methods and the nulls.

    ``table``: ``interventions.sweep``'s rows of one position. The other
    methods are in the tables; six lines are as many as the eye tells apart.
    """
    figure, (diff_ax, accuracy_ax) = panels(2, row_height=3.4)
    for method, (colour, style) in _METHOD_STYLE.items():
        rows = table[table["method"] == method]
        if rows.empty:
            continue
        diff_ax.plot(rows["layer"], rows["logit diff"], marker="o", markersize=3, color=colour, linestyle=style, label=method)
        diff_ax.fill_between(rows["layer"], rows["logit diff low"], rows["logit diff high"], color=colour, alpha=0.15)
        accuracy_ax.plot(rows["layer"], rows["accuracy"], marker="o", markersize=3, color=colour, linestyle=style)
    diff_ax.axhline(0, color="0.6", linewidth=1)
    if "chance" in table:
        accuracy_ax.axhline(table["chance"].iloc[0], color="0.6", linestyle="--", linewidth=1, label="chance")
        legend_below(accuracy_ax, ncol=1)
    diff_ax.set_ylabel("logit(new) − logit(old)")
    diff_ax.set_title("Logit difference (the paper's metric)")
    accuracy_ax.set_ylabel("share answering the new value")
    accuracy_ax.set_ylim(0, 1.02)
    accuracy_ax.set_title("Accuracy of the new answer")
    for ax in (diff_ax, accuracy_ax):
        ax.set_xlabel("layer")
    figure.tight_layout()
    figure.legend(*diff_ax.get_legend_handles_labels(), loc="upper center", ncol=2, bbox_to_anchor=(0.5, 0),
                  frameon=False)  # fmt: skip
    return figure


def share_by_layer(tables: dict[str, pd.DataFrame], match: float, part: float) -> Figure:
    """The circle patch's share of the full patch's shift per layer, with the nulls': a row of panels per model.

    ``tables``: model name → ``interventions.sweep``'s rows (with a
    ``position`` column), one panel per position; bands are the 95 %
    intervals; dashed lines the verdict's thresholds ``match`` and ``part``
    (``interventions.MATCH``, ``interventions.PART``). Layers where the full
    patch does not move the answer are left out (their shares divide by
    nearly nothing).
    """
    positions = list(dict.fromkeys(pd.concat(tables.values())["position"]))
    figure, axes = plt.subplots(len(tables), len(positions), figsize=(PAGE_WIDTH_IN, 2.9 * len(tables) + 0.6), sharey=True,
                                squeeze=False)  # fmt: skip
    for row, (name, table) in zip(axes, tables.items()):
        for ax, position in zip(row, positions):
            _share_panel(ax, table[table["position"] == position], match, part)
            ax.set_title(f"{name}, {position} token")
        row[0].set_ylabel("share of the full patch's shift")
    axes[-1, 0].set_ylim(-0.3, 1.3)
    for ax in axes[-1]:
        ax.set_xlabel("layer")
    figure.tight_layout()
    figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0), frameon=False)
    return figure


def _share_panel(ax: Axes, rows: pd.DataFrame, match: float, part: float) -> None:
    full = rows[rows["method"] == "full patch"].set_index("layer")
    still = full.index[~(full["shift from before low"] > 0)]

    def by_layer(method: str) -> pd.DataFrame:
        # NaN where the full patch does not move the answer, so that the line breaks there instead of bridging it.
        found = rows[rows["method"] == method].set_index("layer").reindex(full.index)
        found.loc[still] = np.nan
        return found

    circle = by_layer("circle patch")
    for base, colour in (("before", "#d95f02"), ("mean ablation", "#7570b3")):
        column = f"share from {base}"
        ax.plot(circle.index, circle[column], marker="o", markersize=3, color=colour,
                label=f"circle patch (paper's), from {base}")  # fmt: skip
        ax.fill_between(circle.index, circle[f"{column} low"], circle[f"{column} high"], color=colour, alpha=0.2)
    for method in NULLS:
        colour, style = _METHOD_STYLE[method]
        ax.plot(full.index, by_layer(method)["share from before"], color=colour, linestyle=style,
                label=f"{method.removesuffix(' (null)')} (null, ours), from before")  # fmt: skip
    for level, word in ((match, "matches"), (part, "partly")):
        ax.axhline(level, color="0.5", linestyle="--", linewidth=1)
        ax.annotate(f"{word} ≥ {level:g}", (0.0, level), xycoords=("axes fraction", "data"), xytext=(2, 2),
                    textcoords="offset points", color="0.35")  # fmt: skip
    ax.axhline(0, color="0.8", linewidth=1)


def irreducibility_by_layer(tables: dict[str, pd.DataFrame], references: dict[str, dict[str, tuple[float, float]]]) -> Figure:
    """S and M per layer on a model's planes, against synthetic shapes of as many points: a row of panels per sweep.

    ``tables``: label → a stored sweep's ``quality`` (``irreducibility.by_layer``'s
    columns, with ``position``); ``references``: label → shape → (S, M) of
    ``synthetic`` samples with the same number of points and bins, drawn as
    labelled horizontal lines.
    """
    figure, axes = plt.subplots(len(tables), 2, figsize=(PAGE_WIDTH_IN, 2.4 * len(tables) + 0.8), squeeze=False)
    planes = {"probe plane": ("#d95f02", "probe plane"), "centroid plane": ("#1b9e77", "centroid plane"),
              "shuffled-label centroid plane": ("0.55", "shuffled labels")}  # fmt: skip
    for row, (label, table) in zip(axes, tables.items()):
        for ax, index in zip(row, ("S", "M")):
            for (position, rows), style in zip(table.groupby("position", sort=False), ("-", "--")):
                for plane, (colour, short) in planes.items():
                    ax.plot(rows["layer"], rows[f"{index} ({plane})"], color=colour, linestyle=style, marker="o",
                            markersize=2, label=f"{short}, {position}")  # fmt: skip
            for shape, values in references[label].items():
                level = values[0 if index == "S" else 1]
                ax.axhline(level, color="0.75", linewidth=1)
                ax.annotate(f"synthetic {shape}", (1.0, level), xycoords=("axes fraction", "data"), ha="right",
                            va="bottom", color="0.4")  # fmt: skip
            ax.set_title(f"{label}\n{'separability S (bits)' if index == 'S' else 'mixture index M'}")
            ax.set_xlabel("layer")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", ncol=3, bbox_to_anchor=(0.5, 0),
                  frameon=False)  # fmt: skip
    return figure


# One colour per verdict category (interventions.VERDICTS), none near white so that every cell shows its number.
VERDICT_COLOURS = {"inconclusive": "#9e9e9e", "matches": "#1b9e77", "partly matches": "#e6ab02",
                   "does not match": "#d95f02"}  # fmt: skip


def verdict_grid(categories: pd.Series, shares: pd.Series) -> Figure:
    """The verdict at every row and layer as a coloured grid, each cell labelled with the circle patch's share.

    ``categories`` and ``shares``: indexed by (row labels…, layer), the
    verdict's category and the circle patch's share of the full patch's
    shift from before (printed in the cell; NaN leaves it blank).
    """
    rows = list(dict.fromkeys(key[:-1] for key in categories.index))
    layers = sorted({key[-1] for key in categories.index})
    figure, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 0.42 * len(rows) + 1.3))
    codes = {category: index for index, category in enumerate(VERDICT_COLOURS)}
    grid = np.array([[codes[categories[(*row, layer)]] for layer in layers] for row in rows])
    ax.imshow(grid, cmap=ListedColormap(list(VERDICT_COLOURS.values())), vmin=0, vmax=len(codes) - 1, aspect="auto")
    for i, row in enumerate(rows):
        for j, layer in enumerate(layers):
            share = shares.get((*row, layer), np.nan)
            if np.isfinite(share):
                ax.text(j, i, f"{share:.0%}", ha="center", va="center")
    ax.set_xticks(range(len(layers)), layers)
    ax.set_yticks(range(len(rows)), [", ".join(map(str, row)) for row in rows])
    ax.set_xlabel("layer")
    handles = [Patch(color=colour, label=category) for category, colour in VERDICT_COLOURS.items()]
    figure.legend(handles=handles, loc="upper center", ncol=4, bbox_to_anchor=(0.5, 1.0), frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.45 / figure.get_size_inches()[1]))
    return figure


def probe_margins(qualities: dict[str, pd.DataFrame]) -> Figure:
    """The circle probe's held-out R² margin over shuffled calendar orders per layer: a panel per model.

    ``qualities``: model name → ``probes.quality_by_layer``'s rows with a
    ``position`` column (a stored sweep's ``quality``), one line per position.
    """
    figure, axes = panels(len(qualities), row_height=3.2, sharey=True)
    for ax, (name, quality) in zip(axes, qualities.items()):
        for (position, rows), colour in zip(quality.groupby("position", sort=False), ("#1b9e77", "#d95f02")):
            ax.plot(rows["layer"], rows["margin"], marker="o", markersize=3, color=colour, label=f"{position} token")
        ax.axhline(0, color="0.6", linewidth=1)
        ax.set_title(name)
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        legend_below(ax, ncol=2)
    axes[0].set_ylabel("R² margin over shuffled orders")
    figure.tight_layout()
    return figure


def answer_distribution(probabilities: np.ndarray, angles: np.ndarray, names: Sequence[str], ax: Axes, title: str = "") -> None:
    """Heatmap of the answer distribution ``(n_angles, p)`` as the patched point moves around the circle."""
    image = ax.imshow(probabilities.T, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                      extent=[np.degrees(angles[0]), np.degrees(angles[-1]), -0.5, len(names) - 0.5])  # fmt: skip
    ax.set_yticks(range(len(names)), [n[:3] for n in names])
    ax.set_xlabel("angle of the patched point (degrees)")
    ax.set_ylabel("answer")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label="probability among allowed answers")


def answer_grid(probabilities: np.ndarray, angles: np.ndarray, radii: np.ndarray, names: Sequence[str], ax: Axes,
                title: str = "") -> None:  # fmt: skip
    """The most likely answer over a grid of patched points ``(n_radii, n_angles, p)``, faded by its probability.

    The paper's off-distribution figure: the answer should follow the angle at
    radius 1 and blur towards the centre (cells fade to grey as the model grows unsure).
    """
    top = probabilities.argmax(axis=2)
    colours = calendar_colours(len(names))[:, :3][top]
    confidence = probabilities.max(axis=2)[..., None]
    faded = confidence * colours + (1 - confidence) * np.full(3, UNSURE_GREY)  # grey: no calendar hue is near it
    ax.imshow(faded, aspect="auto", origin="lower", interpolation="nearest",
              extent=[np.degrees(angles[0]), np.degrees(angles[-1]), radii[0], radii[-1]])  # fmt: skip
    ax.set_xlabel("angle of the patched point (degrees)")
    ax.set_ylabel("radius (1 = the probe's circle)")
    ax.set_title(title)
    handles = [Patch(color=c, label=n[:3]) for c, n in zip(calendar_colours(len(names)), names)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def radius_slider(grids: dict[str, np.ndarray], angles: np.ndarray, radii: np.ndarray, names: Sequence[str],
                  expected: np.ndarray, start: float = 1.0) -> go.Figure:  # fmt: skip
    """A plotly figure with a slider over the radius: each answer's probability as the patched point goes round.

    ``grids``: ``{name: (n_radii, n_angles, p)}`` answer distributions (one
    panel each, stacked); ``angles`` in radians; ``expected``: ``(n_angles,)``
    the answer each angle implies, drawn as a band of calendar colours above
    the curves. The slider starts at the radius nearest ``start``. Every radius
    is drawn when the figure is built: the slider needs no kernel.
    """
    from plotly.subplots import make_subplots

    colours = _plotly_colours(len(names))
    degrees = np.degrees(angles)
    figure = make_subplots(rows=len(grids), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                           subplot_titles=[f"from the {name}" for name in grids])  # fmt: skip
    first = int(np.argmin(np.abs(radii - start)))
    for row in range(1, len(grids) + 1):
        figure.add_trace(go.Scatter(x=degrees, y=np.full(len(degrees), 1.08), mode="markers", showlegend=False,
                                    marker={"symbol": "square", "size": 6, "color": [colours[a] for a in expected]},
                                    text=[f"the angle implies {names[a]}" for a in expected], hoverinfo="text"),
                         row=row, col=1)  # fmt: skip
    for step, _ in enumerate(radii):
        for row, grid in enumerate(grids.values(), start=1):
            for answer, name in enumerate(names):
                figure.add_trace(go.Scatter(x=degrees, y=grid[step, :, answer], mode="lines", name=name[:3],
                                            line={"color": colours[answer], "width": 2}, visible=step == first,
                                            legendgroup=name, showlegend=row == 1), row=row, col=1)  # fmt: skip
    steps = _slider_steps([f"{radius:.1f}" for radius in radii], len(grids) * len(names), always_shown=len(grids))
    figure.update_layout(
        height=300 * len(grids) + 120, margin={"l": 60, "r": 20, "t": 40, "b": 20},
        sliders=[{"active": first, "steps": steps, "currentvalue": {"prefix": "radius (1 = the probe's circle): "},
                  "pad": {"t": 50}}],
        legend={"title": "answer"},
    )  # fmt: skip
    figure.update_yaxes(range=[0, 1.15], title_text="probability")
    figure.update_xaxes(title_text="angle of the patched point (degrees)", row=len(grids), col=1)
    return figure


def _group_colour(name: str, index: int) -> str:
    return "0.85" if name == "unexplained" else plt.get_cmap("tab10")(index % 10)


def explained_variance_layers(tables: dict[str, pd.DataFrame]) -> Figure:
    """Stacked explained variance per layer, one panel per token position (the paper's §5 plots).

    Each table has one row per layer (index ``blocks.{L}.…``) and one column
    per group in entry order, then ``unexplained``; colours follow the columns.
    """
    figure, axes = panels(len(tables), row_height=3.2, sharey=True)
    for ax, (position, table) in zip(axes, tables.items()):
        layers = [int(hook.split(".")[1]) for hook in table.index]
        bottom = np.zeros(len(table))
        for index, group in enumerate(table.columns):
            ax.bar(layers, table[group], bottom=bottom, color=_group_colour(group, index), label=group, width=0.8)
            bottom += table[group].to_numpy()
        ax.set_xlabel("layer")
        ax.set_title(f"{position} token")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("share of variance\n(groups added in order)")
    figure.tight_layout()
    figure.legend(*axes[0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0), ncol=3,
                  frameon=False)  # fmt: skip
    return figure


def fourier_shares(shares: np.ndarray, key: Sequence[int], minimum: float) -> Figure:
    """Bars of each frequency's share of the number embeddings' norm ``(p // 2,)``, the key frequencies ``key`` marked."""
    figure, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 2.8))
    frequencies = np.arange(1, len(shares) + 1)
    colours = [BAND_COLOUR if k in key else POINT_COLOUR for k in frequencies]
    ax.bar(frequencies, shares, color=colours)
    ax.axhline(minimum, color="0.5", linestyle="--", linewidth=1, label=f"key frequency: at least {minimum:.0%}")
    ax.axhline(1 / len(shares), color="0.7", linestyle=":", linewidth=1, label="spread evenly")
    ax.set_xlabel("frequency k (the circle at angle 2πka/p)")
    ax.set_ylabel("share of the norm")
    ax.set_title("Where the trained embeddings put the numbers")
    legend_below(ax, ncol=2)
    figure.tight_layout()
    return figure
