"""mvf.plots: one style for the page, figures no wider than the column, calendar colours told apart, sliders that work
without a kernel."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import rgb_to_hsv

from mvf import interventions, plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_the_style_keeps_every_text_at_least_the_minimum_size():
    rc = matplotlib.rcParams
    assert rc["figure.dpi"] == rc["savefig.dpi"] == 150
    for key in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "ytick.labelsize", "legend.fontsize"):
        assert matplotlib.font_manager.FontProperties(size=rc[key]).get_size_in_points() >= plots.MIN_FONT_PT, key


@pytest.mark.parametrize(("n", "columns", "shape"), [(1, 2, (1, 1)), (3, 2, (2, 2)), (8, 2, (4, 2)), (3, 3, (1, 3))])
def test_panels_fill_the_page_width_and_reflow_into_rows(n, columns, shape):
    figure, axes = plots.panels(n, row_height=2.0, columns=columns)
    assert len(axes) == n and len(figure.axes) == n, "the unused cells are removed"
    assert figure.get_size_inches().tolist() == [plots.PAGE_WIDTH_IN, 2.0 * shape[0]]
    assert axes[0].get_subplotspec().get_gridspec().get_geometry() == shape


def _sweep(layers: int = 4) -> pd.DataFrame:
    rows = []
    for position in interventions.POSITIONS:
        for layer in range(layers):
            for method in ("full patch", "circle patch", *interventions.NULLS):
                share = {"full patch": 1.0, "circle patch": 0.8}.get(method, 0.5)
                rows.append({"position": position, "layer": layer, "method": method,
                             "shift from before low": 1.0 if layer != 2 else -1.0,
                             **{f"share from {base}{end}": share for base in ("before", "mean ablation")
                                for end in ("", " low", " high")}})  # fmt: skip
    return pd.DataFrame(rows)


def test_every_figure_fits_the_page():
    table = pd.DataFrame({"layer": range(3), "position": "operand", "margin": [0.1, 0.2, 0.3]})
    figures = [
        plots.share_by_layer({"a": _sweep(), "b": _sweep()}, 0.7, 0.5),
        plots.probe_margins({"a": table, "b": table}),
        plots.accuracy_against_chance(pd.DataFrame({"a": [0.5, 0.9]}, index=["x", "y"]), pd.Series({"x": 0.1, "y": 0.2})),
        plots.fourier_shares(np.array([0.5, 0.3, 0.2]), [1], 0.25),
    ]
    assert all(figure.get_size_inches()[0] <= plots.PAGE_WIDTH_IN for figure in figures)


def test_the_share_line_breaks_where_the_full_patch_moves_nothing():
    figure = plots.share_by_layer({"a": _sweep()}, 0.7, 0.5)
    circle = figure.axes[0].get_lines()[0]
    assert circle.get_label() == "circle patch (paper's), from before"
    assert np.isnan(circle.get_ydata()[2]) and np.allclose(np.delete(circle.get_ydata(), 2), 0.8)


@pytest.mark.parametrize("n", [7, 12])
def test_calendar_colours_are_cyclic_apart_and_never_near_white(n):
    colours = plots.calendar_colours(n)
    hue, saturation, value = rgb_to_hsv(colours[:, :3]).T
    assert (saturation > 0.5).all() and (value < 0.9).all(), "no colour is near white"
    steps = np.diff(np.append(hue, hue[0] + 1))
    assert np.allclose(steps, 1 / n), "hues evenly round the wheel, the last next to the first"


def test_the_centroid_slider_shows_one_layer_at_a_time_and_starts_where_asked():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(7), 5)
    angles = 2 * np.pi * labels / 7
    ring = np.column_stack([np.cos(angles), np.sin(angles), rng.normal(0, 0.01, 35)])
    acts = {f"blocks.{layer}.hook": ring * (layer + 1) for layer in range(3)}
    figure = plots.centroid_slider(acts, labels, [f"day{i}" for i in range(7)], title="days", start=1)
    visible = [trace.visible for trace in figure.data]
    assert visible == [False, False, True, True, False, False]
    (slider,) = figure.layout.sliders
    assert slider.active == 1 and [step.label for step in slider.steps] == ["0", "1", "2"]
    assert slider.steps[2].args[0]["visible"] == [False, False, False, False, True, True]
    assert slider.steps[2].args[1] == {"title.text": "days at layer 2: centroids in their PCA plane"}, "in words"
    radii = np.hypot(figure.data[3].x, figure.data[3].y)
    assert np.isclose(radii.max(), 1.0), "each layer's plane is scaled to its largest radius"


def test_the_verdict_grid_colours_each_cell_by_its_category_and_prints_the_share():
    index = pd.MultiIndex.from_tuples([("months", "final", 0), ("months", "final", 1), ("days", "operand", 0),
                                       ("days", "operand", 1)])  # fmt: skip
    categories = pd.Series(["matches", "inconclusive", "partly matches", "does not match"], index=index)
    shares = pd.Series([0.93, np.nan, 0.6, 0.2], index=index)
    figure = plots.verdict_grid(categories, shares)
    (image,) = figure.axes[0].get_images()
    codes = list(plots.VERDICT_COLOURS)
    assert image.get_array().tolist() == [[codes.index("matches"), codes.index("inconclusive")],
                                          [codes.index("partly matches"), codes.index("does not match")]]
    assert [text.get_text() for text in figure.axes[0].texts] == ["93%", "60%", "20%"]
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == ["months, final", "days, operand"]
    assert figure.get_size_inches()[0] <= plots.PAGE_WIDTH_IN


def test_the_points_slider_steps_through_the_clouds_with_their_captions():
    clouds = {"a": np.zeros((5, 2)), "b": np.ones((5, 2)), "c": -2 * np.ones((5, 2))}
    figure = plots.points_slider(clouds, {"a": "S 1", "b": "S 2", "c": "S 3"}, title="mix")
    assert [trace.visible for trace in figure.data] == [True, False, False]
    (slider,) = figure.layout.sliders
    assert [step.label for step in slider.steps] == ["a", "b", "c"]
    assert list(slider.steps[2].args) == [{"visible": [False, False, True]}, {"title.text": "mix: c<br><sup>S 3</sup>"}]
    assert figure.layout.xaxis.range == (-2.2, 2.2), "one range for every cloud"


def test_the_cluster_slider_shows_one_cluster_at_a_time_colours_calendar_tokens_and_samples_big_ones():
    rng = np.random.default_rng(0)
    small = (rng.normal(size=(4, 3)), [" Monday", " cat", "Friday", " dog"])
    big = (rng.normal(size=(50, 2)), [" March"] * 50)
    figure = plots.cluster_slider({"1": small, "9": big}, {"1": "cluster 7: S 0.1", "9": "cluster 3: S 0.2"},
                                  max_points=20)
    # Per cluster and panel: the other tokens in one grey trace, then the calendar tokens, each in its colour.
    assert [trace.visible for trace in figure.data] == [True] * 4 + [False] * 4
    (slider,) = figure.layout.sliders
    assert [step.label for step in slider.steps] == ["1", "9"]
    title = "rank 9<br><sup>cluster 3: S 0.2; 20 of 50 tokens drawn at random</sup>"
    assert list(slider.steps[1].args) == [{"visible": [False] * 4 + [True] * 4}, {"title.text": title}]
    grey, monday, friday = "rgb(191,191,191)", plots._plotly_colours(7)[0], plots._plotly_colours(7)[4]
    assert figure.data[0].marker.color == grey and list(figure.data[1].marker.color) == [monday, friday]
    assert list(figure.data[0].text) == ["' cat'", "' dog'"] and list(figure.data[1].text) == ["' Monday'", "'Friday'"]
    assert np.allclose(figure.data[2].x, small[0][[1, 3], 1]) and np.allclose(figure.data[3].y, small[0][[0, 2], 2]), "PCs 2–3"
    assert len(figure.data[5].x) == 20 and set(figure.data[5].x) <= set(big[0][:, 0].astype(np.float32))
    assert np.allclose(figure.data[7].y, figure.data[5].y), "two PCs only: both panels show PCs 1–2"
    with pytest.raises(ValueError, match="expected points"):
        plots.cluster_slider({"bad": (np.zeros((3, 1)), ["a"] * 3)}, {"bad": ""})


def test_the_radius_slider_starts_on_the_circle_and_keeps_the_implied_answers_shown():
    radii = np.linspace(0, 1.9, 20)
    angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    grid = np.random.default_rng(0).dirichlet(np.ones(3), size=(20, 6))
    expected = np.array([0, 0, 1, 1, 2, 2])
    figure = plots.radius_slider({"mean": grid, "own": grid[::-1]}, angles, radii, ["Jan", "Feb", "Mar"], expected)
    bands, curves = figure.data[:2], figure.data[2:]
    assert len(curves) == 20 * 2 * 3 and all(band.visible is not False for band in bands)
    assert list(bands[0].marker.color) == [plots._plotly_colours(3)[a] for a in expected]
    on_circle = [trace for trace in curves if trace.visible]
    assert len(on_circle) == 6 and np.allclose(on_circle[1].y, grid[10, :, 1])
    assert np.allclose(on_circle[4].y, grid[9, :, 1]), "the second panel's grid, at the same radius"
    (slider,) = figure.layout.sliders
    assert slider.active == 10 and slider.steps[0].label == "0.0"
    assert slider.steps[0].args[0]["visible"][:2 + 6] == [True] * 2 + [True] * 6


def test_the_irreducibility_figure_draws_each_plane_per_position_and_labels_each_reference():
    layers = np.arange(5)
    columns = {f"{index} ({plane})": np.linspace(0.1, 0.5, 5) for index in "SM"
               for plane in ("probe plane", "centroid plane", "shuffled-label centroid plane")}  # fmt: skip
    table = pd.concat([pd.DataFrame({"layer": layers, "position": position, **columns})
                       for position in interventions.POSITIONS])  # fmt: skip
    references = {"circle": (0.9, 0.1), "gaussian": (0.2, 0.15)}
    figure = plots.irreducibility_by_layer({"a": table, "b": table}, {"a": references, "b": references})
    assert len(figure.axes) == 4 and figure.get_size_inches()[0] == plots.PAGE_WIDTH_IN
    s_axis, m_axis = figure.axes[:2]
    assert len(s_axis.lines) == 3 * 2 + 2  # three planes at two positions, two reference lines
    assert {text.get_text() for text in m_axis.texts} == {"synthetic circle", "synthetic gaussian"}
    assert [line.get_ydata()[0] for line in m_axis.lines[-2:]] == [0.1, 0.15]  # M's references, not S's


def test_every_day_and_month_has_its_own_colour():
    """Monday and January were one red: all 19 calendar colours stay apart (RGB distance)."""
    colours = np.vstack([plots.calendar_colours(12), plots.calendar_colours(7)])[:, :3]
    distances = np.linalg.norm(colours[:, None] - colours[None], axis=2) + np.eye(19)
    assert distances.min() > 0.25, f"two calendar names are drawn in near-identical colours ({distances.min():.2f})"


def _overlaps(legend, artists) -> list[str]:
    renderer = legend.figure.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    return [name for name, artist in artists if artist.get_visible() and artist.get_text() != ""
            and box.overlaps(artist.get_window_extent(renderer))] if artists else []


def _legend_clear(ax) -> None:
    """``ax``'s legend lies outside its data area, its x label and its tick labels."""
    legend = ax.get_legend()
    assert legend is not None
    renderer = ax.figure.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    assert not box.overlaps(ax.get_window_extent(renderer)), f"the legend of {ax.get_title()!r} covers its data"
    labels = [("x label", ax.xaxis.label)] + [(f"tick {t.get_text()}", t) for t in ax.get_xticklabels()]
    assert not _overlaps(legend, labels), f"the legend of {ax.get_title()!r} covers {_overlaps(legend, labels)}"


def _saved_width(figure) -> int:
    """Pixel width of the figure as the notebook saves it (``bbox_inches="tight"`` takes in a legend outside the axes)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    buffer.seek(0)
    return Image.open(buffer).size[0]


# The rendered-book test fails a figure whose natural width is over 1.63 times the 688 px column it is shown in.
MAX_SAVED_WIDTH = int(1.63 * 688)


def test_legends_lie_off_the_data_and_keep_the_figure_on_the_page():
    from mvf.dates import DAYS, MONTHS

    rng = np.random.default_rng(0)
    figure, (left, right) = plots.panels(2, row_height=3.6)
    plots.labelled_points(rng.normal(size=(120, 2)), np.arange(120) % 12, MONTHS, right, title="all points")
    strings = [f" {name}" for name in DAYS + MONTHS] * 5 + [" the"] * 30  # every calendar name in one cluster
    plots.cluster_panel(rng.normal(size=(len(strings), 3)), strings, (0, 1), left, title="a cluster")
    figure.tight_layout()
    figure.canvas.draw()
    for ax in (left, right):
        _legend_clear(ax)
    table = pd.DataFrame({"circle R2": [0.2, 0.5], "linear R2": [0.1, 0.3], "circle angular error": [0.5, 0.3],
                          "linear angular error": [0.7, 0.6], "shuffled R2 (max)": [0.1, 0.2]})
    quality = plots.probe_quality(table)
    quality.canvas.draw()
    for ax in quality.axes:
        _legend_clear(ax)
    scores = pd.DataFrame({"cyclic order": rng.random(30), "centroid var (2 PCs)": rng.random(30),
                           "point var (2 PCs)": rng.random(30)})
    layers = plots.layer_scores({"days (corpus), gemma-3-270m": scores, "months (corpus), gemma-3-270m": scores})
    for drawn in (figure, quality, layers):
        assert _saved_width(drawn) <= MAX_SAVED_WIDTH, "a legend widens the figure past what the page shows legibly"
    plt.close("all")
