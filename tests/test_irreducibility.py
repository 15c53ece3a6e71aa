"""mvf.irreducibility: S and M of a model's planes, against the labels' shuffled reference."""

import numpy as np

from mvf import irreducibility, metrics


def _ring(n_per_class: int = 5, period: int = 12, noise: float = 0.05, seed: int = 0):
    generator = np.random.default_rng(seed)
    values = np.repeat(np.arange(period), n_per_class)
    angles = 2 * np.pi * values / period
    plane = np.column_stack([np.cos(angles), np.sin(angles)])
    points = np.hstack([plane, 0.3 * generator.normal(size=(len(values), 6))]) + noise * generator.normal(size=(len(values), 8))
    return points @ generator.normal(size=(8, 20)), values


def test_a_ring_is_irreducible_in_its_planes_and_a_blob_is_not():
    points, values = _ring(n_per_class=20)
    blob = np.random.default_rng(1).normal(size=points.shape)
    table = irreducibility.by_layer({"ring": points, "blob": blob}, values, 12)
    assert list(table["layer"]) == [0, 1] and (table["bins"] == 10).all()
    # A ring's two coordinates depend on each other (S high) and hold no dense line (M low); a Gaussian blob's do not.
    for plane in ("probe plane", "centroid plane"):
        assert table.loc[0, f"S ({plane})"] > table.loc[1, f"S ({plane})"] + 0.3, plane
        assert table.loc[0, f"M ({plane})"] < 0.3, plane
    planes = irreducibility.planes(points, values, 12)
    assert {name: plane.shape for name, plane in planes.items()} == {name: (240, 2) for name in planes}
    for name, plane in planes.items():
        assert np.isclose(table.loc[0, f"S ({name})"], metrics.separability_index(plane, bins=10)), name
        assert np.isclose(table.loc[0, f"M ({name})"], metrics.mixture_index(plane)), name
    assert not np.allclose(np.abs(planes["centroid plane"]), np.abs(planes["shuffled-label centroid plane"]))


def test_the_bins_keep_a_point_per_bin_up_to_the_papers_ten():
    assert [irreducibility.bins(n) for n in (21, 36, 99, 100, 5000)] == [4, 6, 9, 10, 10]


def test_a_layer_whose_points_do_not_vary_has_no_plane_and_the_others_are_still_measured():
    points, values = _ring()
    same = np.ones_like(points) + 1e-12 * np.random.default_rng(0).normal(size=points.shape)
    table = irreducibility.by_layer({"same": same, "ring": points}, values, 12)
    assert table.loc[0, [c for c in table if c.startswith(("S (", "M ("))]].isna().all()
    assert table.loc[1, [c for c in table if c.startswith(("S (", "M ("))]].notna().all()
