"""SAE-based discovery of multi-dimensional features (the paper's §2).

Cluster the SAE's decoder directions by cosine similarity, rebuild each
cluster's part of the activations from the sparse SAE codes, project it on its
top principal components and measure S and M on consecutive component pairs.

Two clusterings, as in the paper: spectral clustering on the affinity
1 − arccos(cos)/π (GPT-2), and the top-k graph (Mistral 7B). Both can run
from nearest neighbours computed blockwise in float32 (on the GPU when there
is one), so 65 536 features never need the dense 65 536² similarity matrix.

Ours, beside the paper's: features chosen by what they fire on
(``word_specific_features``) can be measured as if clustered
(``feature_projection``), which finds a circle the SAE spreads over nearly
orthogonal per-name features that no clustering of directions groups.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from scipy.linalg import svdvals
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import SpectralClustering
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from mvf import geometry, metrics

N_COMPONENTS = 5  # the paper's top-5 PCA components
MIN_POINTS = 100  # a 10×10 histogram for S needs at least this many points
# A watched name counts among a cluster's names from this many of its tokens, and from a quarter of the share it
# would have if the cluster's name tokens were spread evenly over the names.
MIN_NAME_TOKENS = 5
MIN_NAME_SHARE = 0.25
MIN_MIXTURE = 0.01  # the paper drops planes with M below this from its mean score
SEEDS = Path(__file__).parent / "data" / "discovery"  # clusterings under several seeds (mvf.commands.discovery_seeds)


def _unit_rows(decoder: np.ndarray | torch.Tensor, device: str | None = None) -> torch.Tensor:
    """Decoder rows scaled to unit norm, float32, on ``device`` (default: the decoder's own, or the CPU)."""
    decoder = torch.as_tensor(decoder)
    if decoder.ndim != 2:
        raise ValueError(f"decoder must be (d_sae, d_in), got shape {tuple(decoder.shape)}.")
    if not torch.isfinite(decoder).all():
        raise ValueError("the decoder has NaN or infinite entries; check the SAE's weights.")
    decoder = decoder.detach().to(device=device or decoder.device, dtype=torch.float32)  # pragma: no mutate (the device matters only off the CPU)
    norms = decoder.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        raise ValueError("the decoder has all-zero rows; drop those features before clustering.")
    return decoder / norms


def similarities(decoder: np.ndarray | torch.Tensor) -> np.ndarray:
    """The paper's ``sims``: cosine similarity of decoder rows with a zero diagonal, ``(d_sae, d_sae)`` float32.

    Dense: 2.4 GB for 24 576 features, 17 GB for 65 536; use
    :func:`nearest_neighbours` beyond a few thousand features.
    """
    unit = _unit_rows(decoder, "cpu")  # pragma: no mutate (the device matters only off the CPU)
    sims = (unit @ unit.T).numpy()
    np.fill_diagonal(sims, 0.0)
    return sims


def nearest_neighbours(
    decoder: np.ndarray | torch.Tensor, k: int, block: int = 2048, device: str | None = None  # pragma: no mutate (the block size changes memory only)
) -> tuple[np.ndarray, np.ndarray]:
    """Each decoder row's ``k`` most similar other rows, computed ``block`` rows at a time.

    ``(d_sae, d_in)`` → cosine similarities ``(d_sae, k)`` float32, descending,
    and indices ``(d_sae, k)`` int64. Peak memory beyond the decoder: one
    ``block × d_sae`` float32 slab (512 MB at 65 536 features). ``device``:
    where to compute (default: the decoder's; pass "cuda" for a NumPy decoder
    on a GPU machine).
    """
    unit = _unit_rows(decoder, device)  # pragma: no mutate (the device matters only off the CPU)
    n = len(unit)
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and d_sae - 1 = {n - 1}, got {k}.")
    values, indices = torch.empty(n, k), torch.empty(n, k, dtype=torch.int64)
    for start in range(0, n, block):  # pragma: no mutate (the block size changes memory only)
        slab = unit[start : start + block] @ unit.T
        rows = torch.arange(len(slab), device=slab.device)  # pragma: no mutate (the device matters only off the CPU)
        slab[rows, rows + start] = -torch.inf  # a feature is not its own neighbour
        top = torch.topk(slab, k)
        values[start : start + len(slab)], indices[start : start + len(slab)] = top.values.cpu(), top.indices.cpu()
    return values.numpy(), indices.numpy()


def angular_affinity(sims: np.ndarray) -> np.ndarray:
    """The paper's spectral affinity, 1 − arccos(sims)/π, with sims clamped to [−1, 1] (same shape)."""
    return 1.0 - np.arccos(np.clip(sims, -1.0, 1.0)) / np.pi


def knn_affinity(decoder: np.ndarray | torch.Tensor, n_neighbours: int, device: str | None = None) -> sparse.csr_matrix:
    """Ours: the paper's affinity kept only between each feature and its ``n_neighbours`` nearest, symmetrised.

    ``(d_sae, d_in)`` → sparse ``(d_sae, d_sae)`` float32 with at most
    ``2 · n_neighbours · d_sae`` entries, built from :func:`nearest_neighbours`.
    """
    values, indices = nearest_neighbours(decoder, n_neighbours, device=device)  # pragma: no mutate (the device matters only off the CPU)
    n = len(values)
    graph = sparse.csr_matrix(
        (angular_affinity(values).ravel(), (np.repeat(np.arange(n), n_neighbours), indices.ravel())), shape=(n, n)
    )
    return graph.maximum(graph.T).astype(np.float32)


def spectral_clusters(
    decoder: np.ndarray | torch.Tensor, n_clusters: int, seed: int = 0, n_neighbours: int | None = None,
    device: str | None = None,
) -> np.ndarray:  # fmt: skip
    """Spectral clustering of the decoder directions; ``(d_sae, d_in)`` → labels ``(d_sae,)``.

    ``n_neighbours=None``: the paper's, on the dense affinity
    1 − arccos(sims)/π with sims' zero diagonal, scikit-learn's default
    k-means label assignment (seeded: the same seed gives the same labels;
    another seed may not). ``n_neighbours=k``: ours, the same affinity kept on
    the k-nearest-neighbour graph (:func:`knn_affinity`), for SAEs too wide
    for the dense matrix.
    """
    n = len(decoder)
    if not 2 <= n_clusters < n:
        raise ValueError(f"n_clusters must be between 2 and d_sae - 1 = {n - 1}, got {n_clusters}.")
    if n_neighbours is None:
        return SpectralClustering(n_clusters=n_clusters, affinity="precomputed", random_state=seed).fit_predict(
            angular_affinity(similarities(decoder))
        )
    # ARPACK's shift-invert factorises the graph's Laplacian, which fills in on a kNN graph (over 5 minutes at
    # 24 576 features on 2 cores); algebraic multigrid takes 105 s and 1.3 GiB there (bench/discovery.py scale).
    model = SpectralClustering(n_clusters=n_clusters, affinity="precomputed", random_state=seed, eigen_solver="amg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = model.fit_predict(knn_affinity(decoder, n_neighbours, device))  # pragma: no mutate (the device matters only off the CPU)
    for warning in caught:  # LOBPCG prints its whole residual vector when short of tolerance; say it in one line
        if "tolerance" in str(warning.message):
            warnings.warn("the spectral embedding's eigensolver (LOBPCG with multigrid) stopped before its tolerance; "
                          "the clusters are approximate (more n_neighbours, or fewer clusters, converge better).",
                          stacklevel=2)  # fmt: skip
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)  # pragma: no mutate (the category comes from the message, a Warning)
    return labels


def graph_clusters(
    decoder: np.ndarray | torch.Tensor, k: int = 2, cutoff: float = 0.5, device: str | None = None
) -> np.ndarray:
    """The paper's graph method: connected components of the top-``k`` similarity graph.

    Each feature links to its ``k`` most similar features whose cosine
    similarity exceeds ``cutoff`` (the paper: k = 2, 3 or 4, cutoff 0.5);
    edges count both ways (back-edges). ``(d_sae, d_in)`` → labels
    ``(d_sae,)``, numbered by first appearance (deterministic). This is the
    authors' later code; the Mistral clusters the paper published came from an
    earlier version in which a feature's top 2 included itself (one real
    neighbour) and components of 1 or of 1 000+ features were dropped:
    ``k=1`` gives those components.
    """
    values, indices = nearest_neighbours(decoder, k, device=device)  # pragma: no mutate (the device matters only off the CPU)
    n = len(values)
    linked = values > cutoff
    rows = np.repeat(np.arange(n), k)[linked.ravel()]
    graph = sparse.csr_matrix((np.ones(len(rows)), (rows, indices.ravel()[linked.ravel()])), shape=(n, n))
    return connected_components(graph)[1]  # weakly connected: an edge joins both its ends


def best_match(members: np.ndarray, labels: np.ndarray) -> tuple[int, float]:
    """The cluster of ``labels`` ``(n_features,)`` that best matches a set of feature ids, and their Jaccard overlap.

    How a cluster found with one seed survives another: 1.0 means the other
    seed has exactly the same cluster, near 0 that its features are scattered.
    """
    members = np.unique(np.asarray(members, dtype=int))
    if not len(members):
        raise ValueError("no features given: a cluster to match needs at least one.")
    candidates = np.unique(labels[members])  # a cluster that holds none of them overlaps by 0
    shared = np.array([(labels[members] == c).sum() for c in candidates])
    sizes = np.array([(labels == c).sum() for c in candidates])
    jaccard = shared / (sizes + len(members) - shared)
    best = int(np.argmax(jaccard))  # the lowest cluster id on a tie
    return int(candidates[best]), float(jaccard[best])


def decoder_fingerprint(decoder: np.ndarray) -> str:
    """A short hash of the decoder ``(n_features, d)`` in float32: what a stored clustering was computed from."""
    return hashlib.sha256(np.ascontiguousarray(decoder, dtype=np.float32).tobytes()).hexdigest()[:16]


def seeds_path(model_name: str) -> Path:
    return SEEDS / f"{model_name}-seeds.json"


def load_seeds(model_name: str) -> dict | None:
    """The stored clusterings under several seeds of ``model_name``'s SAE (``mvf.commands.discovery_seeds``), or None.

    ``ValueError`` when the file is damaged or lacks a part, naming the command that regenerates it.
    """
    path = seeds_path(model_name)
    if not path.exists():
        return None
    regenerate = f"regenerate it with `python -m mvf.commands.discovery_seeds --model {model_name}`"
    try:
        payload = json.loads(path.read_text())
        missing = {"settings", "provenance", "affinity", "seeds"} - set(payload)
    except (json.JSONDecodeError, TypeError, AttributeError) as error:
        raise ValueError(f"{path} is damaged ({error.__class__.__name__}: {error}); {regenerate}.") from error
    if missing or not payload["seeds"]:
        raise ValueError(f"{path} lacks {sorted(missing) or 'seeds'}; {regenerate}.")
    return payload


def cluster_stability(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Adjusted Rand index between two clusterings of the same features (1.0: identical partitions)."""
    return float(adjusted_rand_score(labels_a, labels_b))


def _words(token_strings: Sequence[str]) -> np.ndarray:
    """The tokens as words ``(n,)``: BPE tokens carry their leading space (" Monday")."""
    return np.array([s.strip() for s in token_strings])


def _check_tokens(codes: sparse.spmatrix, token_strings: Sequence[str]) -> None:
    if codes.shape[0] != len(token_strings):
        raise ValueError(f"codes has {codes.shape[0]} tokens but token_strings has {len(token_strings)}.")


def cluster_codes(
    codes: sparse.csr_matrix, labels: np.ndarray, clusters: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each cluster: the tokens where one of its features fires ``(m,)``, its features ``(r,)`` and their
    activations on those tokens ``(m, r)`` (dense).

    ``codes``: sparse ``(n_tokens, d_sae)``. A cluster's reconstructions are
    ``activations @ decoder[features]`` (:func:`cluster_reconstructions`).
    """
    codes = sparse.csc_matrix(codes)
    out = {}
    for cluster in clusters:
        members = np.flatnonzero(labels == cluster)
        part = codes[:, members].tocsr()
        tokens = np.flatnonzero(np.diff(part.indptr))
        out[cluster] = (tokens, members, part[tokens].toarray())
    return out


def cluster_reconstructions(
    codes: sparse.csr_matrix, decoder: np.ndarray, labels: np.ndarray, clusters: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each cluster: the tokens where one of its features fires and Σ_{i in cluster} a_i · W_dec[i] there.

    ``codes``: sparse ``(n_tokens, d_sae)``; ``decoder``: ``(d_sae, d_in)``.
    Returns ``{cluster: (token indices (m,), reconstructions (m, d_in))}``.
    """
    return {cluster: (tokens, activations @ decoder[members])
            for cluster, (tokens, members, activations) in cluster_codes(codes, labels, clusters).items()}


def mean_plane_score(s: np.ndarray, m: np.ndarray) -> float:
    """The paper's cluster score from S and M of its planes ``(n_planes,)``: mean S·(1 − M), M < 0.01 dropped, a dummy 0 in.

    The dummy 0 pulls clusters measured on few planes toward 0; the planes
    with M < 0.01 are dropped as in the authors' code.
    """
    kept = np.asarray(m) >= MIN_MIXTURE
    return float((np.asarray(s)[kept] * (1 - np.asarray(m)[kept])).sum() / (kept.sum() + 1))


def _planes(
    coefficients: np.ndarray, basis: np.ndarray, n_components: int, max_points: int, rng: np.random.Generator
) -> np.ndarray:
    """Consecutive PCA component pairs of the points ``coefficients @ basis`` (``(m, r) @ (r, d_in)``) → ``(k - 1, m', 2)``.

    Callers pass the paper's min(5, cluster size) as ``n_components``; ``k``
    is also at most the points' rank (as ``np.linalg.matrix_rank`` counts it), since a component beyond it would
    pair a real direction with an empty one.

    The PCA is scikit-learn's full one (its signs included), done in the
    basis's row space: with ``basis.T = Q R`` (Q orthonormal), the centred
    points are ``(C − mean C) Rᵀ Qᵀ``, so their singular values and projections
    are those of the ``(m, r)`` matrix ``(C − mean C) Rᵀ``. A cluster of r
    features costs an m × r SVD instead of m × d_in (two SVDs of up to
    4096 × 576 per cluster were 70 % of ranking 200 clusters).
    """
    if len(coefficients) > max_points:
        coefficients = coefficients[np.sort(rng.choice(len(coefficients), max_points, replace=False))]  # pragma: no mutate (replace=None is as false as False)
    dtype = np.result_type(coefficients, basis)
    q, r = np.linalg.qr(basis.T.astype(dtype))
    reduced = (coefficients - coefficients.mean(axis=0)).astype(dtype) @ r.T
    u, s, wt = np.linalg.svd(reduced, full_matrices=False)
    rank = int((s > s.max(initial=0) * max(len(reduced), basis.shape[1]) * np.finfo(dtype).eps).sum())
    k = min(n_components, rank)
    if k < 2:
        return np.empty((0, len(coefficients), 2))
    components = wt[:k] @ q.T
    # scikit-learn's svd_flip(u_based_decision=False): each component's largest entry in absolute value is positive.
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    projected = u[:, :k] * (s[:k] * signs)
    return np.stack([projected[:, [i, i + 1]] for i in range(k - 1)])


def _names_counted(word_index: np.ndarray, n_words: int) -> int:
    """How many words a cluster fires on, from each token's index in the word list (-1: another token)."""
    counts = np.bincount(word_index[word_index >= 0])
    return int(((counts >= MIN_NAME_TOKENS) & (counts >= MIN_NAME_SHARE * counts.sum() / n_words)).sum())


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
    those words (stripped), to see at a glance what a cluster is about, and a
    column ``"day names"``, how many of the words are among its tokens at least
    ``MIN_NAME_TOKENS`` times and at least ``MIN_NAME_SHARE`` / len(words) of
    its word tokens (a cluster of Mondays with a few other days is not a
    weekday cluster).

    For each cluster with at least ``MIN_POINTS`` firing tokens (and at least
    two features, and reconstructions spanning a plane), S and M are measured
    on every consecutive pair of its PCA components (min(5, cluster size)
    components, and no more than their rank). ``score`` is the paper's: the
    mean of S·(1 − M) over the planes, planes with M < 0.01 dropped and a
    dummy 0 included; the table is ranked by it. ``best plane (ours)`` is the
    highest S·(1 − M) of a single plane, whose PCs, S and M the row shows.
    Ours, not the authors': the seeded subsample of ``max_points`` firing
    tokens (they take the first 20 000), the ``MIN_POINTS`` floor, and no upper
    limit on a cluster's size.
    """
    _check_tokens(codes, token_strings)
    rng = np.random.default_rng(seed)
    stripped = _words(token_strings)
    watch = {name: list(dict.fromkeys(words)) for name, words in (watch or {}).items()}
    if empty := [name for name, words in watch.items() if not words]:
        raise ValueError(f"watch lists {empty} are empty: give each at least one word.")
    # Per watched list: each token's index in the list, -1 for other tokens.
    positions = {name: {word: i for i, word in enumerate(words)} for name, words in watch.items()}
    watched = {name: np.array([where.get(s, -1) for s in stripped]) for name, where in positions.items()}  # pragma: no mutate (any negative index is another token)
    sizes = np.bincount(labels)
    candidates = [int(c) for c in np.flatnonzero(sizes >= 2)]
    rows = []
    for cluster, (tokens, members, activations) in cluster_codes(codes, labels, candidates).items():
        if len(tokens) < max(MIN_POINTS, n_components):
            continue
        basis = decoder[members]
        planes = _planes(activations, basis, min(n_components, int(sizes[cluster])), max_points, rng)
        if not len(planes):
            continue  # the reconstructions lie on a line: no plane to measure
        s = metrics.separability_index(planes)
        m = metrics.mixture_index(planes)
        best = int(np.argmax(s * (1 - m)))
        # Each reconstruction's norm, from the features' Gram matrix: |a W|² = a (W Wᵀ) aᵀ.
        strength = np.sqrt(np.einsum("ij,jk,ik->i", activations, basis @ basis.T, activations).clip(min=0))
        top = Counter(token_strings[t] for t in tokens[np.argsort(-strength)[:50]]).most_common(5)
        rows.append({
            "cluster": cluster, "features": int(sizes[cluster]), "tokens": len(tokens),
            "pcs": f"{best + 1},{best + 2}", "S": float(s[best]), "M": float(m[best]),
            "planes": len(planes), "score": mean_plane_score(s, m),
            "best plane (ours)": float(s[best] * (1 - m[best])),
            **{f"{name} share": float((index[tokens] >= 0).mean()) for name, index in watched.items()},
            **{f"{name} names": _names_counted(index[tokens], len(watch[name])) for name, index in watched.items()},
            "top tokens": ", ".join(f"{w!r}×{n}" for w, n in top),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError(f"no cluster fires on {MIN_POINTS} or more tokens; use more tokens or fewer clusters.")
    return table.sort_values(["score", "cluster"], ascending=[False, True]).reset_index(drop=True)


def calendar_like(table: pd.DataFrame, kind: str, n_names: int) -> pd.Index:
    """Rows of a ``rank_clusters`` table (best-ranked first) whose tokens are mostly ``kind`` names ("day", "month")
    and which fire on at least half of the ``n_names`` names: the clusters that stand for the calendar."""
    return table.index[(table[f"{kind} share"] > 0.5) & (table[f"{kind} names"] >= n_names / 2)]


def word_specific_features(
    codes: sparse.csr_matrix, labels: np.ndarray, token_strings: Sequence[str], words: Sequence[str],
    top: int | None = 8, min_fires: int = 20,
) -> pd.DataFrame:  # fmt: skip
    """The ``top`` features (all if None) that put the largest share of their activation on ``words`` (stripped tokens).

    Only features that fire on at least ``min_fires`` tokens count: one that
    fired once, on a day name, is not a day feature. Columns: feature, its
    cluster in ``labels``, that share, and on how many tokens it fires. Shows
    where the SAE keeps a concept the clustering did not surface.
    """
    _check_tokens(codes, token_strings)
    on_words = np.isin(_words(token_strings), list(words))
    total = np.asarray(codes.sum(axis=0)).ravel()
    fires = np.diff(sparse.csc_matrix(codes).indptr)
    share = np.zeros_like(total)
    np.divide(np.asarray(codes[on_words].sum(axis=0)).ravel(), total, out=share, where=total > 0)
    share[fires < min_fires] = 0
    chosen = np.argsort(-share, kind="stable")[:top]  # pragma: no mutate (numpy reads "STABLE" as "stable")
    return pd.DataFrame({"feature": chosen, "cluster": labels[chosen], "share on words": share[chosen], "fires on": fires[chosen]})


def activation_by_word(
    codes: sparse.csr_matrix, token_strings: Sequence[str], features: Sequence[int], words: Sequence[str]
) -> pd.DataFrame:
    """Each feature's activation on each word as a share of its activation on all of ``words``: ``(features, words)``.

    Shows how a few word-specific features split a set of names (rows sum to
    1; a feature that never fires on the words has a row of zeros).
    """
    _check_tokens(codes, token_strings)
    stripped = _words(token_strings)
    chosen = sparse.csc_matrix(codes)[:, list(features)]
    totals = np.column_stack([np.asarray(chosen[stripped == word].sum(axis=0)).ravel() for word in words])
    sums = totals.sum(axis=1, keepdims=True)
    shares = np.zeros_like(totals)
    np.divide(totals, sums, out=shares, where=sums > 0)
    return pd.DataFrame(shares, index=pd.Index(list(features), name="feature"), columns=list(words))


def cluster_projection(
    codes: sparse.csr_matrix, decoder: np.ndarray, labels: np.ndarray, cluster: int, n_components: int = N_COMPONENTS
) -> tuple[np.ndarray, np.ndarray]:
    """One cluster's firing tokens ``(m,)`` and their reconstructions on its top min(n_components, size) PCs ``(m, k)``."""
    tokens, points = cluster_reconstructions(codes, decoder, labels, [cluster])[cluster]
    pca = PCA(n_components=min(n_components, int((labels == cluster).sum())), svd_solver="full")
    return tokens, pca.fit_transform(points)


def best_round_order(order: pd.DataFrame, n_words: int, min_roundness: float = 0.3) -> tuple[float, float, int]:
    """From a ``calendar_order`` table: the best score over planes whose centroids are not a line, its chance, and
    how many such planes there are. The chance is the best of as many random arrangements (at least one); the
    best is NaN when no plane is round or a name is missing."""
    round_planes = order[order["roundness"] >= min_roundness]
    best = float(round_planes["cyclic order"].max())  # NaN when there is none
    return best, geometry.random_order_score(n_words, planes=max(len(round_planes), 1)), len(round_planes)


def feature_projection(
    codes: sparse.csr_matrix, decoder: np.ndarray, features: Sequence[int], n_components: int = N_COMPONENTS
) -> tuple[np.ndarray, np.ndarray]:
    """``cluster_projection`` for a set of features chosen by hand, as if the clustering had grouped them."""
    features = np.unique(np.asarray(features, dtype=int))
    if len(features) and not (0 <= features[0] and features[-1] < len(decoder)):
        raise ValueError(f"feature ids must lie in 0..{len(decoder) - 1}; got {features[0]}..{features[-1]}.")
    if len(features) < 2:
        raise ValueError(f"{len(features)} distinct feature(s) given: a projection onto a plane needs at least 2.")
    chosen = np.isin(np.arange(len(decoder)), features)  # labels in which the chosen features are cluster True
    return cluster_projection(codes, decoder, chosen, True, n_components)


def calendar_order(
    projected: np.ndarray, token_strings: Sequence[str], words: Sequence[str], min_roundness: float = 0.3
) -> pd.DataFrame:
    """Whether the names' centroids go round in calendar order, on each consecutive pair of a cluster's components.

    ``projected`` ``(m, k)`` holds the cluster's firing tokens on its top
    components (``cluster_projection``), ``token_strings`` their ``m``
    strings, ``words`` the names in calendar order. One row per plane: the
    cyclic-order score of the names' centroids (``geometry.cyclic_order_score``:
    1 on a closed ring), the order of their angles alone (``angle order``: 1 on
    an ordered open arc too), the ``closing step`` over the median step, its chance level for that many names, and how many tokens of each name
    the centroids average. A name the cluster never fires on leaves the
    score undefined (NaN) rather than scored over a shorter, different cycle.
    ``roundness`` is the centroids' second singular value over their first
    (1: as wide as long; near 0: a line). On a line the angles around the
    mean are an accident of tiny offsets (they change with the last bits of
    the PCA), so below ``min_roundness`` (ours) the score is NaN too.
    """
    if len(token_strings) != len(projected):
        raise ValueError(f"{len(token_strings)} token_strings for {len(projected)} projected tokens; pass one per token.")
    stripped = _words(token_strings)
    counts = np.array([(stripped == word).sum() for word in words])
    chance = geometry.random_order_score(len(words))
    # Every name's centroid on all the components (m, k); each plane is two of its columns.
    everywhere = np.stack([projected[stripped == word].mean(axis=0) for word in words]) if counts.min() > 0 else None
    rows = []
    for first in range(projected.shape[1] - 1):
        score = angles = closing = roundness = np.nan
        if everywhere is not None:
            centroids = everywhere[:, first : first + 2]
            spread = svdvals(centroids - centroids.mean(axis=0))
            roundness = float(spread[1] / spread[0]) if spread[1] > 0 else 0.0
            if roundness >= min_roundness:
                score, angles = (geometry.cyclic_order_score(centroids, closed) for closed in (True, False))
                closing = geometry.closing_step(centroids)
        rows.append({"pcs": f"{first + 1},{first + 2}", "cyclic order": score, "angle order": angles,
                     "closing step": closing, "chance": chance, "roundness": roundness,
                     "fewest tokens of a name": int(counts.min())})  # fmt: skip
    return pd.DataFrame(rows)


def shape_of(order: pd.DataFrame, n_words: int, min_roundness: float = 0.3) -> str:
    """What a ``calendar_order`` table's round planes show, in words: "a closed ring" (a plane scores 1), "an ordered
    open arc" (the names in calendar order by angle, but the closing step too long: (p − 1)/p), "calendar order above
    chance" (the best round plane beats as many random arrangements), or "no calendar order"."""
    round_planes = order[order["roundness"] >= min_roundness]
    best, chance, _ = best_round_order(order, n_words, min_roundness)
    if (round_planes["cyclic order"] == 1).any():
        return "a closed ring"
    if (round_planes["angle order"] == 1).any():
        return "an ordered open arc"
    return "calendar order above chance" if best > chance else "no calendar order"


TOP_SHARE = 0.1  # the paper's calendar clusters rank among the most irreducible: here, in the top tenth


def cluster_verdict(shape: str, found_under: int, seeds: int, rank: int | None, ranked: int) -> tuple[str, str]:
    """The paper's discovery finding for one calendar kind, in the findings table's words, and why.

    ``shape``: ``shape_of`` the calendar cluster's names; ``found_under``:
    of ``seeds`` clusterings (0: none stored), how many have such a cluster;
    ``rank`` of ``ranked`` (None: no cluster is mostly these names).

    - *does not* when no cluster is mostly these names, when the cluster's
      names are in no calendar order above chance, or when fewer than half of
      the seeds find it (an accident of the seed);
    - *replicates* when its names close a ring, every seed finds it and it
      ranks in the top ``TOP_SHARE``;
    - *partly* otherwise (an arc, a low rank, or a stability not measured).
    """
    if rank is None:
        return "does not", "no cluster is mostly these names"
    if shape == "no calendar order":
        return "does not", "the cluster's names are in no calendar order above chance"
    if seeds and 2 * found_under < seeds:
        return "does not", f"found under {found_under} of {seeds} seeds: an accident of the seed"
    if shape == "a closed ring" and seeds and found_under == seeds and rank <= TOP_SHARE * ranked:
        return "replicates", "a closed ring in the top tenth, under every seed"
    stable = f"found under {found_under} of {seeds} seeds" if seeds else "stability over seeds not measured"
    place = "in the top tenth" if rank <= TOP_SHARE * ranked else "below the top tenth"
    return "partly", f"{shape} {place}, {stable}"
