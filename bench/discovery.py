"""Cluster reconstruction plus scoring against a plain per-entry loop, in the same run.

    python bench/discovery.py [--tokens 20000] [--clusters 64] [--reference-clusters 4] [--whole]

Uses the embedded SAE's decoder and random sparse codes with the SAE's
sparsity (k active features per token). The reference does it the way the
paper's code does: a Python loop over tokens and features adding
a_i · W_dec[i], then S and M of each PCA pair with the per-angle histograms
and 10 000-step gradient ascent (``mvf.metrics_reference``). It runs on the
first ``--reference-clusters`` clusters. Prints per-cluster times of each
part, the speed-ups, and checks that the reconstructions are identical.
"""

import argparse
import time

import numpy as np
from scipy import sparse

from mvf import discovery, metrics, sae
from mvf.discovery import N_COMPONENTS
from mvf.metrics_reference import mixture_index_reference, separability_index_reference


def reference_reconstruction(codes: np.ndarray, decoder: np.ndarray, members: np.ndarray) -> np.ndarray:
    rows = []
    for token in range(codes.shape[0]):
        total, fired = np.zeros(decoder.shape[1]), False
        for feature in members:
            if codes[token, feature] > 0:
                total += codes[token, feature] * decoder[feature]
                fired = True
        if fired:
            rows.append(total)
    return np.array(rows)


def planes_of(points: np.ndarray) -> np.ndarray:
    return discovery._planes(points, N_COMPONENTS, 4096, np.random.default_rng(0))


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=20000)
    parser.add_argument("--clusters", type=int, default=64)
    parser.add_argument("--reference-clusters", type=int, default=4)
    parser.add_argument("--whole", action="store_true", help="also time the chapter's whole discovery (needs the model)")
    args = parser.parse_args()

    model_sae, provenance = sae.load_embedded_sae()
    decoder = model_sae.W_dec.detach().numpy().astype(np.float64)
    d_sae, k = decoder.shape[0], int(provenance["architecture"].split("k=")[1])
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(args.tokens), k)
    columns = np.concatenate([rng.choice(d_sae, k, replace=False) for _ in range(args.tokens)])
    codes = sparse.csr_matrix((rng.exponential(1.0, len(rows)), (rows, columns)), shape=(args.tokens, d_sae))
    labels = discovery.spectral_clusters(decoder, args.clusters, seed=0)
    chosen = list(range(args.clusters))

    built = {}
    build = timed(lambda: built.update(discovery.cluster_reconstructions(codes, decoder, labels, chosen)))
    planes = {c: planes_of(points) for c, (_, points) in built.items()}
    fast_score = timed(lambda: [(metrics.separability_index(p), metrics.mixture_index(p)) for p in planes.values()])
    fast_build, fast_score = build / len(chosen), fast_score / len(chosen)

    dense, few = codes.toarray(), chosen[: args.reference_clusters]
    loop_build = 0.0
    for cluster in few:
        members = np.flatnonzero(labels == cluster)
        loop_build += timed(lambda: np.testing.assert_allclose(
            reference_reconstruction(dense, decoder, members), built[cluster][1], rtol=1e-10, atol=1e-10))  # fmt: skip
    loop_score = timed(lambda: [
        (separability_index_reference(plane), mixture_index_reference(plane)) for c in few for plane in planes[c]])  # fmt: skip
    loop_build, loop_score = loop_build / len(few), loop_score / len(few)

    print(f"{args.tokens} tokens, d_sae {d_sae}, k {k}, {args.clusters} spectral clusters")
    print(f"reconstruction: {fast_build * 1e3:9.2f} ms vs per-entry loop {loop_build * 1e3:9.1f} ms per cluster"
          f" -> {loop_build / fast_build:.0f}x (identical results)")  # fmt: skip
    print(f"S and M on {N_COMPONENTS - 1} PCA pairs: {fast_score * 1e3:9.1f} ms vs paper-style {loop_score * 1e3:9.1f} ms"
          f" per cluster -> {loop_score / fast_score:.0f}x")  # fmt: skip
    total_fast, total_loop = fast_build + fast_score, loop_build + loop_score
    print(f"reconstruction + scoring: {total_loop / total_fast:.0f}x faster per cluster")
    if args.whole:
        whole_discovery(model_sae, provenance, decoder)


def whole_discovery(model_sae, provenance: dict, decoder: np.ndarray) -> None:
    """The discovery chapter's pipeline from cached activations: encode, cluster (200), rank every cluster."""
    from mvf import activations, corpus, models, tokens
    from mvf.dates import DAYS, MONTHS

    model = models.load_model("smollm2-135m", device="cpu")
    texts = corpus.calendar_rich_sample(corpus.corpus_texts(), n_chars=4 * 60_000, seed=0)
    acts = activations.collect_corpus(model, "smollm2-135m", texts, provenance["hook"], activations.CORPUS_CACHE, seq_len=128)
    token_ids = activations.tokenize_corpus(model.tokenizer, texts, 128, tokens.prepends_bos(model)).reshape(-1)
    start = time.perf_counter()
    keep = sae.ordinary_tokens(acts, 128, provenance["max_norm"])
    strings = [model.tokenizer.decode([t]) for t in token_ids[keep].tolist()]
    codes = sae.sparse_codes(model_sae, acts[keep])
    labels = discovery.spectral_clusters(decoder, 200, seed=0)
    table = discovery.rank_clusters(codes, decoder, labels, strings, watch={"day": DAYS, "month": MONTHS})
    print(f"whole discovery from cached activations ({codes.shape[0]} tokens, 200 clusters, {len(table)} ranked): "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
