"""mvf.discovery on a planted SAE: a circle cluster among line clusters."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from scipy.sparse.csgraph import connected_components

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


def _clustered(n_groups: int = 12, per_group: int = 15, d_in: int = 24, spread: float = 0.35, seed: int = 0):
    """Unit directions in ``n_groups`` noisy bundles, shuffled; returns (decoder, group of each row)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, d_in))
    groups = rng.permutation(np.repeat(np.arange(n_groups), per_group))
    decoder = centres[groups] / np.linalg.norm(centres[groups], axis=1, keepdims=True)
    return decoder + spread * rng.normal(size=decoder.shape) / np.sqrt(d_in), groups


def test_nearest_neighbours_match_the_dense_ranking_across_blocks():
    decoder, _ = _clustered()
    values, indices = discovery.nearest_neighbours(decoder, 4, block=7)
    sims = discovery.similarities(decoder)
    np.fill_diagonal(sims, -np.inf)
    np.testing.assert_array_equal(indices, np.argsort(-sims, axis=1, kind="stable")[:, :4])
    np.testing.assert_allclose(values, np.take_along_axis(sims, indices, axis=1), atol=1e-6)
    assert (indices != np.arange(len(decoder))[:, None]).all()


def test_the_papers_affinity_and_zero_diagonal():
    np.testing.assert_allclose(discovery.angular_affinity(np.array([1.0 + 1e-7, 0.0, -1.0, 0.5])), [1, 0.5, 0, 2 / 3])
    decoder, _ = _clustered()
    sims = discovery.similarities(decoder)
    assert (np.diag(sims) == 0).all() and np.allclose(sims, sims.T, atol=1e-6)
    graph = discovery.knn_affinity(decoder, 5)
    assert (graph != graph.T).nnz == 0 and graph.getnnz(axis=1).min() >= 5
    dense = discovery.angular_affinity(sims)
    rows, cols = graph.nonzero()
    np.testing.assert_allclose(graph[rows, cols].A1, dense[rows, cols], atol=1e-5)


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


def test_spectral_clustering_is_seeded_separates_the_groups_and_the_sparse_path_agrees():
    decoder, groups = _clustered()
    first = discovery.spectral_clusters(decoder, 12, seed=0)
    assert np.array_equal(first, discovery.spectral_clusters(decoder, 12, seed=0))
    assert discovery.cluster_stability(first, groups) > 0.95
    assert discovery.cluster_stability(discovery.spectral_clusters(decoder, 12, seed=0, n_neighbours=20), first) > 0.95


def test_stability_across_seeds_is_high_only_where_there_is_structure():
    decoder, _ = _clustered()
    assert discovery.cluster_stability(discovery.spectral_clusters(decoder, 12, seed=0),
                                       discovery.spectral_clusters(decoder, 12, seed=1)) > 0.95  # fmt: skip
    noise = np.random.default_rng(0).normal(size=(180, 24))
    assert discovery.cluster_stability(discovery.spectral_clusters(noise, 12, seed=0),
                                       discovery.spectral_clusters(noise, 12, seed=1)) < 0.8  # fmt: skip


def test_mean_plane_score_drops_degenerate_planes_and_counts_a_dummy_zero():
    assert discovery.mean_plane_score(np.array([0.8, 0.5]), np.array([0.2, 0.005])) == pytest.approx(0.8 * 0.8 / 2)
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


def test_bad_input():
    decoder, codes = _planted(10)
    with pytest.raises(ValueError, match="n_clusters"):
        discovery.spectral_clusters(decoder, 1)
    with pytest.raises(ValueError, match="d_sae, d_in"):
        discovery.graph_clusters(decoder[0])
    with pytest.raises(ValueError, match="all-zero"):
        discovery.graph_clusters(np.vstack([decoder, np.zeros(D_IN)]))
    with pytest.raises(ValueError, match="token_strings"):
        discovery.rank_clusters(sparse.csr_matrix(codes), decoder, np.zeros(len(decoder), int), ["x"])


def test_planes_stop_at_the_rank_of_the_reconstructions():
    rng = np.random.default_rng(0)
    flat = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 16))  # two features: a plane in 16 dimensions
    assert discovery._planes(flat, 5, 4096, rng).shape == (1, 300, 2)
    line = rng.normal(size=(300, 1)) @ rng.normal(size=(1, 16))
    assert discovery._planes(line, 5, 4096, rng).shape[0] == 0


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
    codes = sparse.csr_matrix(np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 0.0], [4.0, 0.0]]))
    table = discovery.activation_by_word(codes, [" Monday", "Tuesday", "x", "Monday "], [0, 1], ["Monday", "Tuesday"])
    np.testing.assert_allclose(table.to_numpy(), [[5 / 8, 3 / 8], [0.0, 1.0]])
    assert list(table.index) == [0, 1]
    with pytest.raises(ValueError, match="token_strings"):
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


def test_feature_projection_takes_each_feature_once_and_checks_ids():
    decoder, codes = _planted()
    codes = sparse.csr_matrix(codes)
    ids, projected = discovery.feature_projection(codes, decoder, [0, 1, 2, 2])
    same_ids, same = discovery.feature_projection(codes, decoder, [2, 1, 0])
    np.testing.assert_array_equal(ids, same_ids)
    np.testing.assert_allclose(projected, same)
    with pytest.raises(ValueError, match="at least 2"):
        discovery.feature_projection(codes, decoder, [3, 3])
    with pytest.raises(ValueError, match="must lie in"):
        discovery.feature_projection(codes, decoder, [-1, 2])
    with pytest.raises(ValueError, match="empty"):
        discovery.rank_clusters(codes, decoder, np.zeros(len(decoder), int), ["x"] * codes.shape[0], watch={"day": []})


def test_best_round_order_ignores_planes_on_a_line():
    order = pd.DataFrame({"cyclic order": [1.0, 0.5, np.nan], "roundness": [0.1, 0.8, 0.9]})
    best, chance, planes = discovery.best_round_order(order, 7)
    assert (best, planes) == (0.5, 2) and 0.27 < chance < 0.5  # the best of 2 random arrangements
    best, chance, planes = discovery.best_round_order(order.iloc[:1], 7)
    assert np.isnan(best) and planes == 0 and chance == pytest.approx(0.26, abs=0.01)


def test_best_match_finds_a_cluster_again_under_another_labelling():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    assert discovery.best_match(np.array([0, 1, 2]), labels) == (0, 1.0)
    cluster, jaccard = discovery.best_match(np.array([2, 5, 6, 7]), labels)  # 3 of 4 land in cluster 2, of size 4
    assert cluster == 2 and jaccard == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="at least one"):
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
    assert discovery.decoder_fingerprint(np.ones((2, 3))) == discovery.decoder_fingerprint(np.ones((2, 3), np.float32))
    assert discovery.decoder_fingerprint(np.ones((2, 3))) != discovery.decoder_fingerprint(np.zeros((2, 3)))


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
    monkeypatch.setattr(discovery.metrics, "separability_index", lambda planes: np.array([0.9, 0.5, 0.1, 0.1]))
    monkeypatch.setattr(discovery.metrics, "mixture_index", lambda planes: np.array([0.9, 0.0, 0.0, 0.0]))
    row = discovery.rank_clusters(*_one_cluster(), n_components=5).loc[0]
    assert (row["pcs"], row["S"], row["M"]) == ("2,3", 0.5, 0.0) and row["best plane (ours)"] == pytest.approx(0.5)


def test_calendar_clusters_are_mostly_names_and_cover_half_of_them():
    table = pd.DataFrame({"day share": [0.9, 0.51, 0.5, 0.9, 0.95], "day names": [7, 4, 7, 3, 3.5]}, index=[4, 9, 2, 7, 1])
    assert list(discovery.calendar_like(table, "day", 7)) == [4, 9, 1]
