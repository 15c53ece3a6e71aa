"""SAE-based discovery of multi-dimensional features (the paper's §2).

Cluster the SAE's decoder directions by cosine similarity, rebuild each
cluster's part of the activations from the sparse SAE codes, project it on its
top principal components and measure S and M on consecutive component pairs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import SpectralClustering
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from mvf import metrics

N_COMPONENTS = 5  # the paper's top-5 PCA components
MIN_POINTS = 100  # a 10×10 histogram for S needs at least this many points


def _unit_rows(decoder: np.ndarray) -> np.ndarray:
    decoder = np.asarray(decoder, dtype=np.float64)
    if decoder.ndim != 2:
        raise ValueError(f"decoder must be (d_sae, d_in), got shape {decoder.shape}.")
    norms = np.linalg.norm(decoder, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("the decoder has all-zero rows; drop those features before clustering.")
    return decoder / norms


def cosine_similarity(decoder: np.ndarray) -> np.ndarray:
    """Cosine similarity of decoder rows: ``(d_sae, d_in)`` → ``(d_sae, d_sae)``."""
    unit = _unit_rows(decoder)
    return unit @ unit.T


def spectral_clusters(decoder: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Spectral clustering of the decoder directions (affinity: cosine similarity, negatives cut to 0).

    ``(d_sae, d_in)`` → labels ``(d_sae,)``. Seeded: the same seed gives the same labels.
    """
    similarity = np.clip(cosine_similarity(decoder), 0.0, None)
    if not 2 <= n_clusters < len(similarity):
        raise ValueError(f"n_clusters must be between 2 and d_sae - 1 = {len(similarity) - 1}, got {n_clusters}.")
    model = SpectralClustering(n_clusters=n_clusters, affinity="precomputed", random_state=seed, assign_labels="cluster_qr")
    return model.fit_predict(similarity)


def threshold_clusters(decoder: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Connected components of the graph linking features with cosine similarity above ``threshold``.

    ``(d_sae, d_in)`` → labels ``(d_sae,)``, numbered by first appearance (deterministic).
    """
    graph = sparse.csr_matrix(cosine_similarity(decoder) > threshold)
    return connected_components(graph, directed=False)[1]


def cluster_stability(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Adjusted Rand index between two clusterings of the same features (1.0: identical partitions)."""
    return float(adjusted_rand_score(labels_a, labels_b))


def cluster_reconstructions(
    codes: sparse.csr_matrix, decoder: np.ndarray, labels: np.ndarray, clusters: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each cluster: the tokens where one of its features fires and Σ_{i in cluster} a_i · W_dec[i] there.

    ``codes``: sparse ``(n_tokens, d_sae)``; ``decoder``: ``(d_sae, d_in)``.
    Returns ``{cluster: (token indices (m,), reconstructions (m, d_in))}``.
    One sparse product per cluster, vectorised over its tokens and features.
    """
    codes = sparse.csc_matrix(codes)
    out = {}
    for cluster in clusters:
        members = np.flatnonzero(labels == cluster)
        part = codes[:, members].tocsr()
        tokens = np.flatnonzero(np.diff(part.indptr))
        out[cluster] = (tokens, np.asarray(part[tokens] @ decoder[members]))
    return out


def _planes(points: np.ndarray, n_components: int, max_points: int, rng: np.random.Generator) -> np.ndarray:
    """Consecutive PCA component pairs of ``(m, d_in)`` points → ``(k - 1, m', 2)``, ``k ≤ n_components``.

    ``k`` is at most the points' rank: reconstructions from a cluster of f
    features span at most f dimensions (the paper's min(5, cluster size)), and
    a component beyond them would pair a real direction with an empty one.
    """
    if len(points) > max_points:
        points = points[np.sort(rng.choice(len(points), max_points, replace=False))]
    k = min(n_components, int(np.linalg.matrix_rank(points - points.mean(axis=0))))
    if k < 2:
        return np.empty((0, len(points), 2))
    projected = PCA(n_components=k).fit_transform(points)
    return np.stack([projected[:, [i, i + 1]] for i in range(k - 1)])


def rank_clusters(
    codes: sparse.csr_matrix,
    decoder: np.ndarray,
    labels: np.ndarray,
    token_strings: Sequence[str],
    n_components: int = N_COMPONENTS,
    max_points: int = 4096,
    seed: int = 0,
    watch: dict[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """A table of clusters ranked by irreducibility, with size, S, M and the tokens they fire on most.

    ``watch``: named word lists, e.g. ``{"day": DAYS}``; each adds a column
    ``"day share"``, the share of a cluster's firing tokens that are one of
    those words (stripped), to see at a glance what a cluster is about.

    For each cluster with at least ``MIN_POINTS`` firing tokens (and at least
    two features, and reconstructions spanning a plane), S and M are measured
    on every consecutive pair of its PCA components (at most their rank); the
    row keeps the pair with the highest ``score = S · (1 − M)`` (our single
    number for "high S, low M"). Subsampling to ``max_points`` is seeded.
    """
    if codes.shape[0] != len(token_strings):
        raise ValueError(f"codes has {codes.shape[0]} tokens but token_strings has {len(token_strings)}.")
    rng = np.random.default_rng(seed)
    stripped = [s.strip() for s in token_strings]
    watched = {name: np.array([s in set(words) for s in stripped]) for name, words in (watch or {}).items()}
    sizes = np.bincount(labels)
    candidates = [int(c) for c in np.flatnonzero(sizes >= 2)]
    rows = []
    for cluster, (tokens, points) in cluster_reconstructions(codes, decoder, labels, candidates).items():
        if len(tokens) < max(MIN_POINTS, n_components):
            continue
        planes = _planes(points, n_components, max_points, rng)
        if not len(planes):
            continue  # the reconstructions lie on a line: no plane to measure
        s = metrics.separability_index(planes)
        m = metrics.mixture_index(planes)
        best = int(np.argmax(s * (1 - m)))
        strength = np.linalg.norm(points, axis=1)
        top = Counter(token_strings[t] for t in tokens[np.argsort(-strength)[:50]]).most_common(5)
        rows.append({
            "cluster": cluster, "features": int(sizes[cluster]), "tokens": len(tokens),
            "pcs": f"{best + 1},{best + 2}", "S": float(s[best]), "M": float(m[best]),
            "score": float(s[best] * (1 - m[best])),
            **{f"{name} share": float(hits[tokens].mean()) for name, hits in watched.items()},
            "top tokens": ", ".join(f"{w!r}×{n}" for w, n in top),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError(f"no cluster fires on {MIN_POINTS} or more tokens; use more tokens or fewer clusters.")
    return table.sort_values(["score", "cluster"], ascending=[False, True]).reset_index(drop=True)


def word_specific_features(
    codes: sparse.csr_matrix, labels: np.ndarray, token_strings: Sequence[str], words: Sequence[str], top: int = 8
) -> pd.DataFrame:
    """The ``top`` features that put the largest share of their activation on ``words`` (stripped tokens).

    Columns: feature, its cluster in ``labels``, that share, and on how many
    tokens it fires. Shows where the SAE keeps a concept the clustering did not surface.
    """
    if codes.shape[0] != len(token_strings):
        raise ValueError(f"codes has {codes.shape[0]} tokens but token_strings has {len(token_strings)}.")
    on_words = np.isin([s.strip() for s in token_strings], list(words))
    total = np.asarray(codes.sum(axis=0)).ravel()
    share = np.divide(np.asarray(codes[on_words].sum(axis=0)).ravel(), total, out=np.zeros_like(total), where=total > 0)
    chosen = np.argsort(-share, kind="stable")[:top]
    fires = np.diff(sparse.csc_matrix(codes).indptr)
    return pd.DataFrame({"feature": chosen, "cluster": labels[chosen], "share on words": share[chosen], "fires on": fires[chosen]})


def cluster_projection(
    codes: sparse.csr_matrix, decoder: np.ndarray, labels: np.ndarray, cluster: int, n_components: int = N_COMPONENTS
) -> tuple[np.ndarray, np.ndarray]:
    """One cluster's firing tokens ``(m,)`` and their reconstructions projected on its top PCs ``(m, n_components)``."""
    tokens, points = cluster_reconstructions(codes, decoder, labels, [cluster])[cluster]
    return tokens, PCA(n_components=n_components).fit_transform(points)
