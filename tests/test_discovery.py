"""mvf.discovery on a planted SAE: a circle cluster among line clusters."""

import numpy as np
import pytest
from scipy import sparse

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


def test_threshold_graph_finds_the_ring_and_the_pairs():
    decoder, _ = _planted(10)
    labels = discovery.threshold_clusters(decoder, 0.5)
    assert len(set(labels[:CIRCLE])) == 1
    assert len(set(labels)) == 4


def test_spectral_clustering_is_deterministic_and_separates_the_groups():
    decoder, _ = _planted(10)
    first = discovery.spectral_clusters(decoder, 4, seed=0)
    assert np.array_equal(first, discovery.spectral_clusters(decoder, 4, seed=0))
    assert discovery.cluster_stability(first, discovery.threshold_clusters(decoder, 0.5)) == 1.0


def test_reconstruction_equals_the_dense_formula():
    decoder, codes = _planted(400)
    labels = discovery.threshold_clusters(decoder, 0.5)
    result = discovery.cluster_reconstructions(sparse.csr_matrix(codes), decoder, labels, sorted(set(labels)))
    for cluster, (tokens, points) in result.items():
        members = labels == cluster
        firing = np.flatnonzero((codes[:, members] > 0).any(axis=1))
        np.testing.assert_array_equal(tokens, firing)
        np.testing.assert_allclose(points, codes[np.ix_(firing, members)] @ decoder[members])


def test_ranking_puts_the_planted_circle_first():
    decoder, codes = _planted()
    labels = discovery.threshold_clusters(decoder, 0.5)
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
    labels = discovery.threshold_clusters(decoder, 0.5)
    strings = ["day" if t % 2 == 0 else "line" for t in range(len(codes))]
    table = discovery.word_specific_features(sparse.csr_matrix(codes), labels, strings, ["day"], top=CIRCLE)
    assert sorted(table["feature"]) == list(range(CIRCLE))
    assert (table["share on words"] == 1.0).all() and (table["cluster"] == labels[0]).all()
    assert (table["fires on"] > 0).all()


def test_bad_input():
    decoder, codes = _planted(10)
    with pytest.raises(ValueError, match="n_clusters"):
        discovery.spectral_clusters(decoder, 1)
    with pytest.raises(ValueError, match="d_sae, d_in"):
        discovery.threshold_clusters(decoder[0])
    with pytest.raises(ValueError, match="all-zero"):
        discovery.threshold_clusters(np.vstack([decoder, np.zeros(D_IN)]))
    with pytest.raises(ValueError, match="token_strings"):
        discovery.rank_clusters(sparse.csr_matrix(codes), decoder, np.zeros(len(decoder), int), ["x"])


def test_planes_stop_at_the_rank_of_the_reconstructions():
    rng = np.random.default_rng(0)
    flat = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 16))  # two features: a plane in 16 dimensions
    assert discovery._planes(flat, 5, 4096, rng).shape == (1, 300, 2)
    line = rng.normal(size=(300, 1)) @ rng.normal(size=(1, 16))
    assert discovery._planes(line, 5, 4096, rng).shape[0] == 0
