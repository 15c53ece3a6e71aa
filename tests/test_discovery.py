"""mvf.discovery on a planted SAE: a circle cluster among line clusters."""

import hashlib
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import pdist
import sklearn.manifold._spectral_embedding
from sklearn.cluster import SpectralClustering
from sklearn.metrics.pairwise import cosine_similarity
from threadpoolctl import threadpool_limits

from mvf import discovery

D_IN = 16
CIRCLE = 7


def _planted(n_tokens: int = 3000, seed: int = 0):
    """Decoder: 7 circle features in dims 0-1, then 3 pairs of nearly parallel 'line' features; sparse codes."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(CIRCLE) / CIRCLE
    decoder = np.zeros((CIRCLE + 6, D_IN))
    decoder[:CIRCLE, 0], decoder[:CIRCLE, 1] = np.cos(angles), np.sin(angles)
    for j in range(3):
        decoder[CIRCLE + 2 * j, 2 + j] = 1.0
        decoder[CIRCLE + 2 * j + 1, [2 + j, 8 + j]] = [1.0, 0.1]
    codes = np.zeros((n_tokens, len(decoder)))
    for t in range(n_tokens):
        if t % 2 == 0:  # a point on the circle, as a positive mix of its two neighbouring features
            phi = rng.uniform(0, 2 * np.pi)
            k = int(phi // (2 * np.pi / CIRCLE))
            pair = [k, (k + 1) % CIRCLE]
            codes[t, pair] = np.linalg.solve(decoder[pair, :2].T, [np.cos(phi), np.sin(phi)])
        else:  # one line feature (mostly the first of its pair) at a random strength
            j = rng.integers(3)
            codes[t, CIRCLE + 2 * j + int(rng.random() < 0.3)] = rng.uniform(0.5, 2.0)
    return decoder, np.clip(codes, 0, None)


def _reference_graph(decoder: np.ndarray, k: int, cutoff: float) -> np.ndarray:
    """The top-k graph from the dense similarity matrix, one feature at a time (plain reference)."""
    unit = decoder / np.linalg.norm(decoder, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    edges = sparse.lil_matrix((len(sims), len(sims)))
    for i, row in enumerate(sims):
        for j in np.argsort(-row)[:k]:
            if row[j] > cutoff:
                edges[i, j] = edges[j, i] = 1
    return connected_components(edges.tocsr(), directed=False)[1]


@pytest.fixture
def one_blas_thread():
    """SVDs of 600 columns: BLAS threads would only stall each other when another job shares the cores."""
    with threadpool_limits(1):
        yield


def _clustered(n_groups: int = 12, per_group: int = 15, d_in: int = 24, spread: float = 0.35, seed: int = 0):
    """Unit directions in ``n_groups`` noisy bundles, shuffled; returns (decoder, group of each row)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, d_in))
    groups = rng.permutation(np.repeat(np.arange(n_groups), per_group))
    decoder = centres[groups] / np.linalg.norm(centres[groups], axis=1, keepdims=True)
    return decoder + spread * rng.normal(size=decoder.shape) / np.sqrt(d_in), groups


def _rows_of_many_lengths(n_groups: int = 12, per_group: int = 15):
    """``_clustered`` directions scaled to lengths from 0.5 to 3: a cosine must not depend on them."""
    decoder, groups = _clustered(n_groups, per_group)
    return decoder * np.random.default_rng(1).uniform(0.5, 3.0, size=(len(decoder), 1)), groups


def test_similarities_are_the_cosines_of_the_decoder_rows_in_float32():
    decoder, _ = _rows_of_many_lengths()
    expected = cosine_similarity(decoder)
    np.fill_diagonal(expected, 0.0)
    sims = discovery.similarities(decoder)
    assert sims.dtype == np.float32
    np.testing.assert_allclose(sims, expected, atol=1e-6)


def test_nearest_neighbours_match_the_dense_ranking_across_blocks():
    decoder, _ = _rows_of_many_lengths(n_groups=4, per_group=5)  # 20 rows: near-ties between neighbours are unlikely
    sims = cosine_similarity(decoder)
    np.fill_diagonal(sims, -np.inf)  # a feature is not its own neighbour
    for k in (1, 4, 19):  # the fewest and the most neighbours allowed
        values, indices = discovery.nearest_neighbours(decoder, k, block=7)
        np.testing.assert_array_equal(indices, np.argsort(-sims, axis=1)[:, :k])
        np.testing.assert_allclose(values, np.take_along_axis(sims, indices, axis=1), atol=1e-6)
    for k in (0, 20):
        with pytest.raises(ValueError, match=rf"^k must be between 1 and d_sae - 1 = 19, got {k}\.$"):
            discovery.nearest_neighbours(decoder, k)


def test_the_papers_affinity_and_zero_diagonal():
    sims = np.array([1.0 + 1e-7, 0.0, -1.0, 0.5, -1.0 - 1e-7])  # rounding can take a cosine past ±1
    np.testing.assert_allclose(discovery.angular_affinity(sims), [1, 0.5, 0, 2 / 3, 0])
    decoder, _ = _clustered()
    sims = discovery.similarities(decoder)
    assert (np.diag(sims) == 0).all() and np.allclose(sims, sims.T, atol=1e-6)
    graph = discovery.knn_affinity(decoder, 5)
    assert (graph != graph.T).nnz == 0 and graph.getnnz(axis=1).min() >= 5
    dense = discovery.angular_affinity(sims)
    rows, cols = graph.nonzero()
    np.testing.assert_allclose(graph[rows, cols].A1, dense[rows, cols], atol=1e-5)


def test_knn_affinity_links_each_feature_to_its_nearest_both_ways():
    # Directions at 0°, 10°, 90°, 100° and 120°, one neighbour each: 120° is nobody's nearest, yet its link to 100°
    # counts both ways, at the affinity 1 − angle/π.
    degrees = np.array([0, 10, 90, 100, 120])
    decoder = np.column_stack([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))])
    expected = np.zeros((5, 5))
    for i, j in [(0, 1), (2, 3), (3, 4)]:
        expected[i, j] = expected[j, i] = 1 - abs(degrees[i] - degrees[j]) / 180
    graph = discovery.knn_affinity(decoder, 1)
    assert graph.dtype == np.float32
    np.testing.assert_allclose(graph.toarray(), expected, atol=1e-6)


def test_top_k_graph_defaults_to_two_neighbours_above_cosine_one_half():
    # Two tight triples of directions 30° apart: two neighbours stay inside a triple, the third crosses (cos 30° = 0.87).
    degrees = np.array([0, 5, 10, 40, 45, 50])
    decoder = np.column_stack([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))])
    np.testing.assert_array_equal(discovery.graph_clusters(decoder), [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(discovery.graph_clusters(decoder, k=3), [0] * 6)
    np.testing.assert_array_equal(discovery.graph_clusters(decoder, k=3, cutoff=0.9), [0, 0, 0, 1, 1, 1])
    # A similarity exactly at the cutoff does not link: orthogonal directions at cutoff 0.
    np.testing.assert_array_equal(discovery.graph_clusters(np.eye(2), k=1, cutoff=0.0), [0, 1])


def test_top_k_graph_links_the_ring_with_back_edges_and_matches_the_dense_reference():
    decoder, _ = _planted(10)
    labels = discovery.graph_clusters(decoder, k=2, cutoff=0.5)
    assert len(set(labels[:CIRCLE])) == 1 and len(set(labels)) == 4
    clustered, _ = _clustered()
    for k in (2, 3, 4):
        for cutoff in (0.3, 0.5, 0.7):
            expected = _reference_graph(clustered, k, cutoff)
            assert discovery.cluster_stability(discovery.graph_clusters(clustered, k, cutoff), expected) == 1.0
    # A hub: feature 0 is nearest to 1 and 2, while 3's nearest is 0; only the back-edge joins 3 to the cluster.
    hub = np.array([[1.0, 0, 0], [0.99, 0.14, 0], [0.99, -0.14, 0], [0.8, 0, 0.6]])
    assert len(set(discovery.graph_clusters(hub, k=2, cutoff=0.5))) == 1


TOLERANCE = ("the spectral embedding's eigensolver (LOBPCG with multigrid) stopped before its tolerance; "
             "the clusters are approximate (more n_neighbours, or fewer clusters, converge better).")


def test_dense_spectral_clustering_is_scikit_learns_on_the_papers_affinity_seeded_0_by_default():
    # Noise, where the affinity and the seed both change the labels.
    noise = np.random.default_rng(0).normal(size=(60, 8))
    unit = noise / np.linalg.norm(noise, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, 0.0)
    affinity = 1 - np.arccos(np.clip(sims, -1, 1)) / np.pi
    expected = SpectralClustering(6, affinity="precomputed", random_state=0).fit_predict(affinity)
    np.testing.assert_array_equal(discovery.spectral_clusters(noise, 6), expected)
    assert not np.array_equal(discovery.spectral_clusters(noise, 6, seed=1), expected)


def test_sparse_spectral_clustering_is_seeded_multigrid_on_the_knn_affinity_and_warns_in_one_line():
    decoder, groups = _clustered()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = discovery.spectral_clusters(decoder, 12, n_neighbours=20)
    # LOBPCG falls short of its tolerance here: each of its warnings comes back as our one line, pointing at the caller
    # (whoever called spectral_clusters: this file, or the wrapper a mutation-testing tool puts in between).
    assert caught and all(str(w.message) == TOLERANCE and w.category is UserWarning for w in caught)
    assert not {w.filename for w in caught} & {discovery.__file__, sklearn.manifold._spectral_embedding.__file__}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference's own LOBPCG warnings, residual vectors and all
        model = SpectralClustering(12, affinity="precomputed", random_state=0, eigen_solver="amg")
        expected = model.fit_predict(discovery.knn_affinity(decoder, 20))
    np.testing.assert_array_equal(labels, expected)
    assert discovery.cluster_stability(labels, groups) > 0.95


def test_other_warnings_of_the_sparse_path_pass_through_unchanged():
    # Two bundles of ten far apart with three neighbours each: the kNN graph falls in two pieces.
    decoder = np.repeat(np.eye(4)[:2], 10, axis=0) + 0.05 * np.random.default_rng(0).normal(size=(20, 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = discovery.spectral_clusters(decoder, 2, n_neighbours=3)  # 2: the fewest clusters allowed
    assert discovery.cluster_stability(labels, np.repeat([0, 1], 10)) == 1.0
    [warning] = caught
    assert str(warning.message) == "Graph is not fully connected, spectral embedding may not work as expected."
    assert warning.category is UserWarning and warning.filename.endswith("_spectral_embedding.py")


def test_spectral_clustering_is_seeded_and_separates_the_groups():
    decoder, groups = _clustered()
    first = discovery.spectral_clusters(decoder, 12, seed=0)
    assert np.array_equal(first, discovery.spectral_clusters(decoder, 12, seed=0))
    assert discovery.cluster_stability(first, groups) > 0.95


def test_stability_across_seeds_is_high_only_where_there_is_structure():
    decoder, _ = _clustered()
    assert discovery.cluster_stability(discovery.spectral_clusters(decoder, 12, seed=0),
                                       discovery.spectral_clusters(decoder, 12, seed=1)) > 0.95  # fmt: skip
    noise = np.random.default_rng(0).normal(size=(180, 24))
    assert discovery.cluster_stability(discovery.spectral_clusters(noise, 12, seed=0),
                                       discovery.spectral_clusters(noise, 12, seed=1)) < 0.8  # fmt: skip


def test_mean_plane_score_drops_degenerate_planes_and_counts_a_dummy_zero():
    assert discovery.mean_plane_score(np.array([0.8, 0.5]), np.array([0.2, 0.005])) == pytest.approx(0.8 * 0.8 / 2)
    assert discovery.mean_plane_score(np.array([0.5]), np.array([0.01])) == pytest.approx(0.5 * 0.99 / 2)  # M = 0.01 stays
    assert discovery.mean_plane_score(np.array([0.9]), np.array([0.0])) == 0.0
    assert discovery.mean_plane_score(np.array([0.6, 0.4]), np.array([0.5, 0.5])) == pytest.approx((0.3 + 0.2) / 3)


def test_reconstruction_equals_the_dense_formula():
    decoder, codes = _planted(400)
    labels = discovery.graph_clusters(decoder, 2, 0.5)
    result = discovery.cluster_reconstructions(sparse.csr_matrix(codes), decoder, labels, sorted(set(labels)))
    for cluster, (tokens, points) in result.items():
        members = labels == cluster
        firing = np.flatnonzero((codes[:, members] > 0).any(axis=1))
        np.testing.assert_array_equal(tokens, firing)
        np.testing.assert_allclose(points, codes[np.ix_(firing, members)] @ decoder[members])


def test_ranking_puts_the_planted_circle_first():
    decoder, codes = _planted()
    labels = discovery.graph_clusters(decoder, 2, 0.5)
    strings = ["day" if t % 2 == 0 else "line" for t in range(len(codes))]
    table = discovery.rank_clusters(sparse.csr_matrix(codes), decoder, labels, strings, n_components=2,
                                    watch={"day": ["day"]})  # fmt: skip
    assert table.loc[0, "cluster"] == labels[0]
    assert table.loc[0, "day share"] == 1.0 and (table.loc[1:, "day share"] == 0.0).all()
    assert table.loc[0, "S"] > 0.8 and table.loc[0, "M"] < 0.3
    assert (table.loc[1:, "M"] > 0.5).all()
    assert "'day'" in table.loc[0, "top tokens"]
    again = discovery.rank_clusters(sparse.csr_matrix(codes), decoder, labels, strings, n_components=2,
                                    watch={"day": ["day"]})  # fmt: skip
    assert table.equals(again)


def test_word_specific_features_find_the_circle_features():
    decoder, codes = _planted()
    labels = discovery.graph_clusters(decoder, 2, 0.5)
    strings = ["day" if t % 2 == 0 else "line" for t in range(len(codes))]
    table = discovery.word_specific_features(sparse.csr_matrix(codes), labels, strings, ["day"], top=CIRCLE)
    assert sorted(table["feature"]) == list(range(CIRCLE))
    assert (table["share on words"] == 1.0).all() and (table["cluster"] == labels[0]).all()
    assert (table["fires on"] > 0).all()
    rare = codes.copy()
    rare[:, CIRCLE] = 0
    rare[0, CIRCLE] = 5.0  # a feature that fired once, on a day token: a perfect share, and no evidence
    table = discovery.word_specific_features(sparse.csr_matrix(rare), labels, strings, ["day"], top=CIRCLE + 1)
    assert table["share on words"].iloc[CIRCLE] == 0.0 and table["fires on"].iloc[:CIRCLE].ge(20).all()


def test_word_specific_features_rank_features_firing_20_times_by_share_stably_top_8():
    # 30 features on 30 day tokens, then 30 others: f0 fires exactly 20 times, all on days, weakly (0.2 in all); f1 19
    # times on days; f2 never; f3 and f4 half on days (a tie); f5 25 of 40 on days; the rest only on other tokens.
    strings = [" Monday", "Tuesday "] * 15 + ["x"] * 30
    codes = np.zeros((60, 30))
    codes[:20, 0] = 0.01
    codes[:19, 1] = 1.0
    codes[:10, 3] = codes[30:40, 3] = 1.0
    codes[:5, 4], codes[30:45, 4] = 3.0, 1.0
    codes[:25, 5], codes[30:35, 5] = 1.0, 3.0
    codes[30:55, 6:] = 1.0
    labels = np.arange(30) % 4

    def expected(min_fires):
        """The table, one feature at a time: ties stay in feature order."""
        fires = (codes > 0).sum(axis=0)
        share = [codes[:30, f].sum() / codes[:, f].sum() if fires[f] >= max(min_fires, 1) else 0.0 for f in range(30)]
        order = sorted(range(30), key=lambda f: (-share[f], f))
        return pd.DataFrame({"feature": order, "cluster": labels[order], "share on words": np.array(share)[order],
                             "fires on": fires[order]})  # fmt: skip

    def table(**options):
        return discovery.word_specific_features(sparse.csr_matrix(codes), labels, strings, ["Monday", "Tuesday"], **options)

    assert list(table()["feature"]) == [0, 5, 3, 4, 1, 2, 6, 7]
    pd.testing.assert_frame_equal(table(), expected(20).head(8), check_dtype=False)
    pd.testing.assert_frame_equal(table(top=None), expected(20), check_dtype=False)
    pd.testing.assert_frame_equal(table(top=None, min_fires=0), expected(0), check_dtype=False)  # f2's share: 0, not 0/0


def test_bad_input():
    decoder, codes = _planted(10)
    for n_clusters in (1, len(decoder)):
        with pytest.raises(ValueError, match=rf"^n_clusters must be between 2 and d_sae - 1 = 12, got {n_clusters}\.$"):
            discovery.spectral_clusters(decoder, n_clusters)
    with pytest.raises(ValueError, match="d_sae, d_in"):
        discovery.graph_clusters(decoder[0])
    with pytest.raises(ValueError, match=r"^the decoder has all-zero rows; drop those features before clustering\.$"):
        discovery.graph_clusters(np.vstack([decoder, np.zeros(D_IN)]))
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match=r"^the decoder has NaN or infinite entries; check the SAE's weights\.$"):
            discovery.similarities(np.vstack([decoder, np.full(D_IN, bad)]))
    with pytest.raises(ValueError, match=r"^codes has 10 tokens but token_strings has 1\.$"):
        discovery.rank_clusters(sparse.csr_matrix(codes), decoder, np.zeros(len(decoder), int), ["x"])


def test_planes_stop_at_the_rank_of_the_reconstructions():
    rng = np.random.default_rng(0)
    # Two features: a plane in 16 dimensions.
    assert discovery._planes(rng.normal(size=(300, 2)), rng.normal(size=(2, 16)), 5, 4096, rng).shape == (1, 300, 2)
    # Off the origin, a line once centred: 5 + x·d is [1, x] @ [5…5; d].
    line = np.column_stack([np.ones(300), rng.normal(size=300)])
    basis = np.vstack([np.full(16, 5.0), rng.normal(size=16)])
    np.testing.assert_array_equal(discovery._planes(line, basis, 5, 4096, rng), np.empty((0, 300, 2)))


@pytest.mark.usefixtures("one_blas_thread")
def test_planes_pair_consecutive_exact_principal_components():
    # Wide noise, 60 points in 600 dimensions: where scikit-learn's "auto" solver would be randomised and approximate.
    points = np.random.default_rng(0).normal(size=(60, 600))
    u, s, _ = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
    components = u[:, :5] * s[:5]
    planes = discovery._planes(points, np.eye(600), 5, 4096, np.random.default_rng(0))
    assert len(planes) == 4
    for i, plane in enumerate(planes):  # the sign of a component is a convention
        np.testing.assert_allclose(np.abs(plane), np.abs(components[:, i : i + 2]), atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_planes_are_scikit_learns_pca_of_the_reconstructions_signs_included(dtype):
    """The PCA in the features' space is scikit-learn's full PCA of the reconstructions in d_in, sign for sign."""
    rng = np.random.default_rng(3)
    activations = np.abs(rng.normal(size=(400, 7))).astype(dtype) * (rng.random((400, 7)) < 0.4)
    basis = rng.normal(size=(7, 48)).astype(dtype)
    expected = PCA(n_components=5, svd_solver="full").fit_transform(activations @ basis)
    planes = discovery._planes(activations, basis, 5, 4096, np.random.default_rng(0))
    tolerance = 1e-3 if dtype == np.float32 else 1e-9
    for i, plane in enumerate(planes):
        np.testing.assert_allclose(plane, expected[:, i : i + 2], rtol=tolerance, atol=tolerance * np.abs(expected).max())


def test_planes_subsample_max_points_distinct_tokens_only_above_max_points():
    rng = np.random.default_rng(0)
    activations, basis = rng.normal(size=(100, 2)), rng.normal(size=(2, 16))  # a plane: its PCA keeps the distances
    points = activations @ basis
    chosen = np.sort(np.random.default_rng(1).choice(100, 40, replace=False))
    planes = discovery._planes(activations, basis, 2, 40, np.random.default_rng(1))
    np.testing.assert_allclose(pdist(planes[0]), pdist(points[chosen]))
    # At exactly max_points nothing is drawn: the generator is left as it was for the next cluster.
    generator = np.random.default_rng(1)
    np.testing.assert_allclose(pdist(discovery._planes(activations, basis, 2, 100, generator)[0]), pdist(points))
    assert generator.random() == np.random.default_rng(1).random()


def test_each_cluster_is_measured_on_min_5_size_components():
    decoder, codes = _planted()
    labels = discovery.graph_clusters(decoder, 2, 0.5)
    strings = ["day" if t % 2 == 0 else "line" for t in range(len(codes))]
    table = discovery.rank_clusters(sparse.csr_matrix(codes), decoder, labels, strings)
    # Pairs of line features: 2 components, 1 plane. The ring: 7 features whose reconstructions span only a plane.
    assert (table["planes"] == 1).all() and len(table) == 4
    assert (table["score"] <= table["best plane (ours)"] / 2 + 1e-12).all()
    assert table.loc[0, "cluster"] == labels[0]


def test_activation_by_word_splits_each_features_activation_over_the_words():
    # Feature 3 fires weakly (0.75 in all) on both days, feature 1 only on another token, feature 0 on both days.
    codes = sparse.csr_matrix(np.array([[1.0, 0, 0, 0.25, 0], [3.0, 0, 0, 0.5, 0], [0, 2.0, 0, 0, 0], [4.0, 0, 0, 0, 0]]))
    table = discovery.activation_by_word(codes, [" Monday", "Tuesday", "x", "Monday "], [3, 1, 0], ["Monday", "Tuesday"])
    expected = pd.DataFrame([[1 / 3, 2 / 3], [0.0, 0.0], [5 / 8, 3 / 8]], index=pd.Index([3, 1, 0], name="feature"),
                            columns=["Monday", "Tuesday"])  # fmt: skip
    pd.testing.assert_frame_equal(table, expected)
    with pytest.raises(ValueError, match=r"^codes has 4 tokens but token_strings has 1\.$"):
        discovery.activation_by_word(codes, ["x"], [0], ["Monday"])


def test_calendar_order_scores_each_plane_and_needs_every_name():
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    angles = 2 * np.pi * np.arange(7) / 7
    rng = np.random.default_rng(0)
    tokens = np.repeat(np.arange(7), 20)
    # Components 1-2: a circle in calendar order; components 2-3 pair it with noise of the same size.
    projected = np.column_stack([np.cos(angles[tokens]), np.sin(angles[tokens]), rng.permutation(np.cos(angles[tokens]))])
    projected += rng.normal(scale=0.05, size=projected.shape)
    strings = [f" {days[t]}" for t in tokens]
    table = discovery.calendar_order(projected, strings, days)
    assert list(table["pcs"]) == ["1,2", "2,3"]
    assert table.loc[0, "cyclic order"] == 1.0 and not table.loc[1, "cyclic order"] >= 1.0  # NaN or lower: no circle
    assert table.loc[0, "chance"] == pytest.approx(0.26, abs=0.01) and table.loc[0, "fewest tokens of a name"] == 20
    assert table.loc[0, "roundness"] > 0.9  # a circle is as wide as it is long
    assert table.loc[0, "angle order"] == 1.0 and table.loc[0, "closing step"] < 1.5
    # The same days on an open half-circle: in order by angle, with a long closing step; not a closed ring.
    half = np.column_stack([np.cos(angles[tokens] / 2), np.sin(angles[tokens] / 2)]) + rng.normal(scale=0.01, size=(140, 2))
    arc = discovery.calendar_order(half, strings, days).loc[0]
    assert arc["angle order"] == 1.0 and arc["cyclic order"] == pytest.approx(6 / 7) and arc["closing step"] > 1.5
    line = np.column_stack([np.arange(7.0)[tokens], np.zeros(len(tokens))]) + rng.normal(scale=0.01, size=(len(tokens), 2))
    on_line = discovery.calendar_order(line, strings, days)
    assert on_line.loc[0, "roundness"] < 0.05 and np.isnan(on_line.loc[0, "cyclic order"])
    no_sunday = discovery.calendar_order(projected[tokens < 6], strings[: 6 * 20], days)
    assert no_sunday["cyclic order"].isna().all() and (no_sunday["fewest tokens of a name"] == 0).all()
    with pytest.raises(ValueError, match="one per token"):
        discovery.calendar_order(projected, strings[:-1], days)


def test_rank_clusters_counts_the_names_each_cluster_fires_on():
    decoder, codes = _planted()
    labels = discovery.graph_clusters(decoder, 2, 0.5)
    # The circle's tokens cycle through three names, one of them on fewer tokens than a name needs to count.
    names = ["alpha", "beta", "gamma"]
    strings = [names[(t // 2) % 2] if t % 2 == 0 else "line" for t in range(len(codes))]
    strings[0] = strings[2] = strings[4] = strings[6] = "gamma"
    watch = {"greek": names}
    table = discovery.rank_clusters(sparse.csr_matrix(codes), decoder, labels, strings, n_components=2, watch=watch)
    circle = table[table["cluster"] == labels[0]].iloc[0]
    assert circle["greek names"] == 2  # alpha and beta; gamma's 4 tokens are below MIN_NAME_TOKENS
    assert (table.loc[table["cluster"] != labels[0], "greek names"] == 0).all()
    strings = [names[(t // 2) % 3] if t % 2 == 0 else "line" for t in range(len(codes))]
    table = discovery.rank_clusters(sparse.csr_matrix(codes), decoder, labels, strings, n_components=2, watch=watch)
    assert table.loc[table["cluster"] == labels[0], "greek names"].iloc[0] == 3


def test_roundness_is_the_centroids_width_over_their_length_from_one_token_a_name():
    # Four names whose centroids are the corners of a 1.6 × 0.8 rectangle off the origin: singular values 1.6 and 0.8.
    # "a" has two tokens, the others one.
    corners = np.array([[0.8, 0.4], [-0.8, 0.4], [-0.8, -0.4], [0.8, -0.4]]) + 5.0
    projected = np.vstack([corners[0] + [0, 0.1], corners[0] - [0, 0.1], corners[1:]])
    strings, names = ["a", "a", "b", "c", "d"], ["a", "b", "c", "d"]
    row = discovery.calendar_order(projected, strings, names).loc[0]
    assert row["roundness"] == pytest.approx(0.5) and row["cyclic order"] == 1.0 and row["fewest tokens of a name"] == 1
    at_threshold = discovery.calendar_order(projected, strings, names, min_roundness=row["roundness"]).loc[0]
    assert at_threshold["cyclic order"] == 1.0
    # Every centroid in one place: neither long nor wide, roundness 0 and no score.
    same = discovery.calendar_order(np.ones((4, 2)), names, names).loc[0]
    assert same["roundness"] == 0.0 and np.isnan(same["cyclic order"])


def _reference_projection(codes: np.ndarray, decoder: np.ndarray, members: np.ndarray, k: int):
    """Tokens where a member fires and their reconstructions' top-k principal coordinates, by numpy's SVD."""
    firing = np.flatnonzero(codes[:, members].any(axis=1))
    points = codes[np.ix_(firing, members)] @ decoder[members]
    u, s, _ = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
    return firing, u[:, :k] * s[:k]


@pytest.mark.usefixtures("one_blas_thread")
def test_cluster_and_feature_projections_are_the_exact_pca_of_the_reconstructions():
    # A cluster of 40 features in 600 dimensions (where the "auto" solver would be randomised) beside one of 3.
    rng = np.random.default_rng(0)
    decoder = rng.normal(size=(43, 600))
    codes = rng.uniform(size=(100, 43)) * (rng.random((100, 43)) < 0.3)
    codes[90:, :40] = 0  # tokens where only the small cluster fires
    labels = np.repeat([1, 0], [40, 3])
    for cluster, members, k in [(1, np.arange(40), 5), (0, np.arange(40, 43), 3)]:  # k = min(5, cluster size)
        tokens, projected = discovery.cluster_projection(sparse.csr_matrix(codes), decoder, labels, cluster)
        firing, expected = _reference_projection(codes, decoder, members, k)
        np.testing.assert_array_equal(tokens, firing)
        np.testing.assert_allclose(np.abs(projected), np.abs(expected), atol=1e-8)  # a component's sign is a convention
    for features, n_components, k in [([42, 40, 41], 2, 2), ([42, 40], 5, 2)]:  # two features: the fewest allowed
        tokens, projected = discovery.feature_projection(sparse.csr_matrix(codes), decoder, features, n_components)
        firing, expected = _reference_projection(codes, decoder, np.sort(features), k)
        np.testing.assert_array_equal(tokens, firing)
        np.testing.assert_allclose(np.abs(projected), np.abs(expected), atol=1e-8)


def test_pooled_name_features_recover_a_circle_the_clustering_splits():
    """Positive control: one feature per day, nearly orthogonal (each mostly its own direction, a little of a shared
    circle); clustering decoder directions cannot group them, pooling them by what they fire on finds the circle."""
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    rng = np.random.default_rng(0)
    angles = 2 * np.pi * np.arange(7) / 7
    decoder = np.zeros((7 + 3, 7 + 2 + 3))
    decoder[:7, :2] = 0.4 * np.column_stack([np.cos(angles), np.sin(angles)])
    decoder[np.arange(7), 2 + np.arange(7)] = 1.0
    decoder[7 + np.arange(3), 9 + np.arange(3)] = 1.0  # unrelated features
    tokens = np.repeat(np.arange(10), 40)
    codes = np.zeros((len(tokens), len(decoder)))
    codes[np.arange(len(tokens)), tokens] = rng.uniform(0.5, 1.5, len(tokens))
    strings = [f" {days[t]}" if t < 7 else " other" for t in tokens]
    unit = decoder[:7] / np.linalg.norm(decoder[:7], axis=1, keepdims=True)
    assert (unit @ unit.T)[np.triu_indices(7, 1)].max() < 0.2  # below the top-k graph's cutoff
    labels = np.arange(len(decoder))
    chosen = discovery.word_specific_features(sparse.csr_matrix(codes), labels, strings, days, top=None)
    pooled = chosen.loc[chosen["share on words"] > 0.5, "feature"].to_numpy()
    assert sorted(pooled) == list(range(7))
    ids, projected = discovery.feature_projection(sparse.csr_matrix(codes), decoder, pooled)
    np.testing.assert_array_equal(ids, np.flatnonzero(tokens < 7))
    order = discovery.calendar_order(projected, [strings[t] for t in ids], days)
    assert order["cyclic order"].max() == 1.0
    with pytest.raises(ValueError, match="at least 2"):
        discovery.feature_projection(sparse.csr_matrix(codes), decoder, pooled[:1])


def test_a_name_counts_from_a_quarter_of_an_even_share():
    # 100 tokens of the first name, 6 of the second and 12 of the third: a name needs 0.25 × 118 / 3 = 9.8.
    index = np.array([0] * 100 + [1] * 6 + [2] * 12 + [-1] * 50)
    assert discovery._names_counted(index, 3) == 2
    assert discovery._names_counted(np.array([0] * 4 + [1] * 4), 2) == 0  # an even share, but too few tokens
    # Both thresholds reached exactly: 5 tokens, and 0.25 × 40 / 2 = 5.
    assert discovery._names_counted(np.array([0] * 5 + [1] * 35), 2) == 2


def test_feature_projection_takes_each_feature_once_and_checks_ids():
    decoder, codes = _planted()
    codes = sparse.csr_matrix(codes)
    ids, projected = discovery.feature_projection(codes, decoder, [0, 1, 2, 2])
    same_ids, same = discovery.feature_projection(codes, decoder, [2, 1, 0])
    np.testing.assert_array_equal(ids, same_ids)
    np.testing.assert_allclose(projected, same)
    with pytest.raises(ValueError, match=r"^1 distinct feature\(s\) given: a projection onto a plane needs at least 2\.$"):
        discovery.feature_projection(codes, decoder, [3, 3])
    with pytest.raises(ValueError, match="must lie in"):
        discovery.feature_projection(codes, decoder, [-1, 2])
    # One past the last feature, among ids given as floats (as pandas may hold them): named as the integers they are.
    with pytest.raises(ValueError, match=r"^feature ids must lie in 0\.\.12; got 2\.\.13\.$"):
        discovery.feature_projection(codes, decoder, [13.0, 2.0, 5.0])
    with pytest.raises(ValueError, match="empty"):
        discovery.rank_clusters(codes, decoder, np.zeros(len(decoder), int), ["x"] * codes.shape[0], watch={"day": []})


def test_best_round_order_ignores_planes_on_a_line():
    order = pd.DataFrame({"cyclic order": [1.0, 0.5, np.nan, 0.7], "roundness": [0.1, 0.8, 0.9, 0.3]})
    best, chance, planes = discovery.best_round_order(order.iloc[:3], 7)
    assert (best, planes) == (0.5, 2) and 0.27 < chance < 0.5  # the best of 2 random arrangements
    best, chance, planes = discovery.best_round_order(order.iloc[:1], 7)
    assert np.isnan(best) and planes == 0 and chance == pytest.approx(0.26, abs=0.01)
    assert discovery.best_round_order(order, 7)[::2] == (0.7, 3)  # a roundness of exactly 0.3 is round enough


def test_best_match_finds_a_cluster_again_under_another_labelling():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    assert discovery.best_match(np.array([0, 1, 2]), labels) == (0, 1.0)
    cluster, jaccard = discovery.best_match(np.array([2, 5, 6, 7]), labels)  # 3 of 4 land in cluster 2, of size 4
    assert cluster == 2 and jaccard == pytest.approx(3 / 5)
    assert discovery.best_match([7.0, 6.0, 5.0, 2.0], labels) == (cluster, jaccard)  # ids as floats, e.g. from JSON
    with pytest.raises(ValueError, match=r"^no features given: a cluster to match needs at least one\.$"):
        discovery.best_match(np.array([], dtype=int), labels)


def test_stored_seeds_are_validated(tmp_path, monkeypatch):
    monkeypatch.setattr(discovery, "SEEDS", tmp_path)
    assert discovery.load_seeds("m") is None
    discovery.seeds_path("m").write_text("{")
    with pytest.raises(ValueError, match="damaged.*mvf.commands.discovery_seeds --model m"):
        discovery.load_seeds("m")
    discovery.seeds_path("m").write_text('{"settings": {}, "provenance": {}, "seeds": [{}]}')
    with pytest.raises(ValueError, match=r"lacks \['affinity'\]"):
        discovery.load_seeds("m")
    payload = {"settings": {}, "provenance": {}, "affinity": "angular", "seeds": []}
    discovery.seeds_path("m").write_text(json.dumps(payload))
    message = f"{discovery.seeds_path('m')} lacks seeds; regenerate it with `python -m mvf.commands.discovery_seeds --model m`."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        discovery.load_seeds("m")
    payload["seeds"] = [{"seed": 0, "labels": [0, 1]}]
    discovery.seeds_path("m").write_text(json.dumps(payload))
    assert discovery.load_seeds("m") == payload
    # The fingerprint: sha256 of the float32 bytes (six little-endian ones), cut to 16 hex digits.
    assert discovery.decoder_fingerprint(np.ones((2, 3))) == hashlib.sha256(b"\x00\x00\x80\x3f" * 6).hexdigest()[:16]
    assert discovery.decoder_fingerprint(np.ones((2, 3))) == discovery.decoder_fingerprint(np.ones((2, 3), np.float32))
    assert discovery.decoder_fingerprint(np.ones((2, 3))) != discovery.decoder_fingerprint(np.zeros((2, 3)))


def _clusters_to_skip_and_one_to_rank():
    """Three clusters of two features, in id order: one firing on 99 tokens (too few), one of two parallel features (a
    line), one on exactly 100 tokens (enough), whose tokens grow weaker in turn and carry strings chosen by strength."""
    decoder = np.zeros((6, 5))
    decoder[[0, 1, 2, 4, 5], [0, 1, 2, 3, 4]] = 1.0
    decoder[3, 2] = 2.0  # parallel to feature 2
    rng = np.random.default_rng(0)
    codes = np.zeros((349, 6))
    codes[:99, :2] = rng.uniform(0.5, 1.5, size=(99, 2))
    codes[99:249, 2:4] = rng.uniform(0.5, 1.5, size=(150, 2))
    angles, strength = rng.uniform(0.1, 1.4, 100), np.arange(100, 0, -1)
    codes[249:, 4], codes[249:, 5] = strength * np.cos(angles), strength * np.sin(angles)
    # The 50 strongest: a×14, b×12, c×10, d×8, e×4, f×2 in a shuffled order; the 51st another e; then z.
    strongest = rng.permutation(np.repeat(list("abcdef"), [14, 12, 10, 8, 4, 2]))
    strings = ["skip"] * 249 + strongest.tolist() + ["e"] + ["z"] * 49
    return sparse.csr_matrix(codes), decoder, np.repeat([0, 1, 2], 2), strings


def test_rank_clusters_skips_clusters_of_few_tokens_or_on_a_line_and_names_the_strongest_tokens():
    table = discovery.rank_clusters(*_clusters_to_skip_and_one_to_rank())
    assert list(table.columns) == ["cluster", "features", "tokens", "pcs", "S", "M", "planes", "score",
                                   "best plane (ours)", "top tokens"]  # fmt: skip
    assert list(table["cluster"]) == [2]
    row = table.loc[0]
    assert (row["features"], row["tokens"], row["pcs"], row["planes"]) == (2, 100, "1,2", 1)
    assert row["top tokens"] == "'a'×14, 'b'×12, 'c'×10, 'd'×8, 'e'×4"  # the 5 commonest of the 50 strongest


def test_rank_clusters_needs_a_cluster_firing_on_100_tokens():
    codes, decoder, labels, strings = _clusters_to_skip_and_one_to_rank()
    with pytest.raises(ValueError, match=r"^no cluster fires on 100 or more tokens; use more tokens or fewer clusters\.$"):
        discovery.rank_clusters(codes[:99], decoder, labels, strings[:99])


def test_rank_clusters_subsamples_4096_tokens_seeded_0_by_default():
    codes = sparse.csr_matrix(np.random.default_rng(0).uniform(0.1, 1.0, size=(4200, 2)))
    args = codes, np.eye(2), np.zeros(2, dtype=int), ["x"] * 4200
    table = discovery.rank_clusters(*args)
    pd.testing.assert_frame_equal(table, discovery.rank_clusters(*args, max_points=4096, seed=0))
    for other in ({"seed": 1}, {"max_points": 4097}):
        assert not table.equals(discovery.rank_clusters(*args, **other))


def _one_cluster():
    """The planted SAE with every feature in one cluster: its reconstructions span 8 dimensions."""
    decoder, codes = _planted()
    return sparse.csr_matrix(codes), decoder, np.zeros(len(decoder), dtype=int), ["x"] * len(codes)


@pytest.mark.parametrize("n_components", [2, 3, 5])
def test_rank_clusters_measures_as_many_planes_as_components_asked(n_components):
    table = discovery.rank_clusters(*_one_cluster(), n_components=n_components)
    assert table.loc[0, "planes"] == n_components - 1


def test_the_best_plane_is_the_one_with_the_highest_s_times_one_minus_m(monkeypatch):
    """The most separable plane is a mixture here: the best plane is the next one, where S·(1 − M) is highest."""
    # S·(1 − M) = 0.45 and 0.48 on the first two planes; S·(2 − M) would pick the first.
    monkeypatch.setattr(discovery.metrics, "separability_index", lambda planes: np.array([0.9, 0.8, 0.1, 0.1]))
    monkeypatch.setattr(discovery.metrics, "mixture_index", lambda planes: np.array([0.5, 0.4, 0.0, 0.0]))
    row = discovery.rank_clusters(*_one_cluster(), n_components=5).loc[0]
    assert (row["pcs"], row["S"], row["M"]) == ("2,3", 0.8, 0.4) and row["best plane (ours)"] == pytest.approx(0.48)
    assert row["score"] == pytest.approx((0.45 + 0.48) / 3)  # planes with M = 0 dropped, a dummy 0 counted


def test_clusters_with_equal_scores_are_ranked_by_cluster_id(monkeypatch):
    monkeypatch.setattr(discovery.metrics, "separability_index", lambda planes: np.full(len(planes), 0.5))
    monkeypatch.setattr(discovery.metrics, "mixture_index", lambda planes: np.full(len(planes), 0.5))
    decoder, codes = _planted()
    labels = discovery.graph_clusters(decoder, 2, 0.5)
    table = discovery.rank_clusters(sparse.csr_matrix(codes), decoder, labels, ["x"] * len(codes))
    assert list(table["cluster"]) == [0, 1, 2, 3]


def test_calendar_clusters_are_mostly_names_and_cover_half_of_them():
    table = pd.DataFrame({"day share": [0.9, 0.51, 0.5, 0.9, 0.95], "day names": [7, 4, 7, 3, 3.5]}, index=[4, 9, 2, 7, 1])
    assert list(discovery.calendar_like(table, "day", 7)) == [4, 9, 1]


def _order(cyclic: list[float], angle: list[float], roundness: float = 0.8) -> pd.DataFrame:
    return pd.DataFrame({"cyclic order": cyclic, "angle order": angle, "roundness": roundness,
                         "chance": 0.26, "closing step": 1.0})  # fmt: skip


def test_the_shape_of_a_calendar_order_names_an_open_arc_for_what_it_is():
    assert discovery.shape_of(_order([1.0, 0.5], [1.0, 0.5]), 7) == "a closed ring"
    assert discovery.shape_of(_order([6 / 7, 0.5], [1.0, 0.5]), 7) == "an ordered open arc"  # 0.86: never closed
    assert discovery.shape_of(_order([0.71, 0.5], [0.71, 0.5]), 7) == "calendar order above chance"
    assert discovery.shape_of(_order([0.29, 0.14], [0.29, 0.14]), 7) == "no calendar order"  # under the best of two
    assert discovery.shape_of(_order([1.0], [1.0], roundness=0.1), 7) == "no calendar order"  # a line is no plane


@pytest.mark.parametrize("shape, found, seeds, rank, word", [
    ("a closed ring", 5, 5, 7, "replicates"),
    ("a closed ring", 5, 5, 30, "partly"),               # below the top tenth of 200
    ("a closed ring", 4, 5, 7, "partly"),                # not under every seed
    ("a closed ring", 2, 5, 7, "does not"),              # under fewer than half
    ("a closed ring", 0, 0, 7, "partly"),                # stability not measured
    ("an ordered open arc", 5, 5, 7, "partly"),
    ("no calendar order", 5, 5, 7, "does not"),
    ("a closed ring", 5, 5, None, "does not"),
])  # fmt: skip
def test_the_discovery_verdict_needs_order_stability_and_rank(shape, found, seeds, rank, word):
    assert discovery.cluster_verdict(shape, found, seeds, rank, 200)[0] == word
