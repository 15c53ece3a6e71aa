"""Discovery's two costly parts against plain references measured in the same run.

    python bench/discovery.py reconstruction [--tokens 20000] [--clusters 64] [--reference-clusters 4] [--whole]
    python bench/discovery.py scale [--sizes 24576x768 65536x4096] [--clusters 1000] [--device cuda]

``reconstruction`` uses the embedded SAE's decoder and random sparse codes
with the SAE's sparsity (k active features per token). The reference does it
the way the paper's code does: a Python loop over tokens and features adding
a_i · W_dec[i], then S and M of each PCA pair with the per-angle histograms
and 10 000-step gradient ascent (``mvf.metrics_reference``). It runs on the
first ``--reference-clusters`` clusters. Prints per-cluster times of each
part, the speed-ups, and checks that the reconstructions are identical.

``scale`` clusters random unit decoder matrices of the paper's sizes (GPT-2
small's 24 576 × 768, Mistral 7B's 65 536 × 4 096). Each method runs in its
own process, which reports its time and peak resident memory (and peak GPU
memory): the paper's top-k graph (k = 2, cutoff 0.5) from blockwise nearest
neighbours, against the same graph from the dense similarity matrix (the
plain reference); spectral clustering on the k-nearest-neighbour affinity
(ours), against the paper's dense affinity. A dense path is skipped, with
what it would need, when it does not fit in the memory available.
"""

import argparse
import json
import os
import subprocess
import sys
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


def reconstruction(args: argparse.Namespace) -> None:
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


def random_decoder(size: str) -> np.ndarray:
    """A seeded random unit decoder of ``"{d_sae}x{d_in}"``, float32."""
    d_sae, d_in = map(int, size.split("x"))
    decoder = np.random.default_rng(0).standard_normal((d_sae, d_in), dtype=np.float32)
    return decoder / np.linalg.norm(decoder, axis=1, keepdims=True)


def dense_graph(decoder: np.ndarray, k: int, cutoff: float) -> np.ndarray:
    """The plain reference: the dense float64 similarity matrix, then each row's top k, then components."""
    from scipy.sparse.csgraph import connected_components

    sims = decoder.astype(np.float64) @ decoder.T.astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    keep = np.take_along_axis(sims, top, axis=1) > cutoff
    rows = np.repeat(np.arange(len(sims)), k)[keep.ravel()]
    graph = sparse.csr_matrix((np.ones(len(rows)), (rows, top.ravel()[keep.ravel()])), shape=sims.shape)
    return connected_components(graph, directed=False)[1]


# Bytes per feature² each dense path holds at its peak, to skip what cannot fit: float64 sims, the argpartition's
# negated copy and its int64 indices; the float32 affinity, scikit-learn's float64 copy, the Laplacian, ARPACK's copy
# for shift-invert and the LU's (measured: 20.9 GiB at 24 576 features, 37 bytes per feature²).
DENSE_BYTES = {"graph, dense (reference)": 8 + 8 + 8, "spectral, dense affinity (paper's)": 4 + 8 + 8 + 8 + 8}


def one_method(method: str, size: str, clusters: int, device: str | None) -> dict:
    """Runs in a child process: one clustering method on one size; returns its labels' summary and seconds."""
    decoder = random_decoder(size)
    started = time.perf_counter()
    if method == "graph, top-k blockwise (paper's)":
        labels = discovery.graph_clusters(decoder, k=2, cutoff=0.5, device=device)
    elif method == "graph, dense (reference)":
        labels = dense_graph(decoder, k=2, cutoff=0.5)
    elif method == "spectral, kNN affinity (ours)":
        labels = discovery.spectral_clusters(decoder, clusters, seed=0, n_neighbours=16, device=device)
    else:
        labels = discovery.spectral_clusters(decoder, clusters, seed=0)
    seconds = time.perf_counter() - started
    import torch

    gpu = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {"seconds": seconds, "clusters": int(labels.max() + 1), "gpu_gib": gpu}


def available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":") for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) * 1024


def scale(args: argparse.Namespace) -> None:
    for size in args.sizes:
        d_sae = int(size.split("x")[0])
        print(f"{size} random unit decoder, {args.clusters} spectral clusters, device {args.device or 'cpu'}:", flush=True)
        timings = {}
        for method in args.methods:
            need = DENSE_BYTES.get(method, 0) * d_sae**2
            if need > 0.8 * available_bytes():
                print(f"  {method}: skipped, needs about {need / 2**30:.0f} GiB, {available_bytes() / 2**30:.0f} GiB free")
                continue
            command = [sys.executable, __file__, "one", method, size, str(args.clusters), args.device or ""]
            child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            output = child.stdout.read()
            _, status, usage = os.wait4(child.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                print(f"  {method}: failed (exit code {os.waitstatus_to_exitcode(status)}; negative: killed by that signal)")
                continue
            result = json.loads(output.strip().splitlines()[-1])
            timings[method] = result["seconds"]
            gpu = f", peak GPU {result['gpu_gib']:.2f} GiB" if result["gpu_gib"] is not None else ""
            print(f"  {method}: {result['seconds']:.1f} s, peak RSS {usage.ru_maxrss / 2**20:.2f} GiB{gpu}, "
                  f"{result['clusters']} clusters", flush=True)  # fmt: skip
        for fast, slow in (("graph, top-k blockwise (paper's)", "graph, dense (reference)"),
                           ("spectral, kNN affinity (ours)", "spectral, dense affinity (paper's)")):  # fmt: skip
            if fast in timings and slow in timings:
                print(f"  {fast} vs {slow}: {timings[slow] / timings[fast]:.1f}x faster")


METHODS = ["graph, top-k blockwise (paper's)", "graph, dense (reference)", "spectral, kNN affinity (ours)",
           "spectral, dense affinity (paper's)"]  # fmt: skip


def main() -> None:
    if sys.argv[1:2] == ["one"]:
        method, size, clusters, device = sys.argv[2:6]
        print(json.dumps(one_method(method, size, int(clusters), device or None)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parts = parser.add_subparsers(dest="part")
    rebuild = parts.add_parser("reconstruction", help="cluster reconstruction and scoring (the default)")
    rebuild.add_argument("--tokens", type=int, default=20000)
    rebuild.add_argument("--clusters", type=int, default=64)
    rebuild.add_argument("--reference-clusters", type=int, default=4)
    rebuild.add_argument("--whole", action="store_true", help="also time the chapter's whole discovery (needs the model)")
    at_scale = parts.add_parser("scale", help="clustering at the paper's SAE widths")
    at_scale.add_argument("--sizes", nargs="+", default=["24576x768", "65536x4096"])
    at_scale.add_argument("--clusters", type=int, default=1000, help="spectral clusters (the paper: 1000 for GPT-2)")
    at_scale.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    at_scale.add_argument("--device", default=None, help="where the nearest neighbours are computed, e.g. cuda")
    args = parser.parse_args()
    if args.part == "scale":
        scale(args)
    else:
        reconstruction(args if args.part else rebuild.parse_args([]))


if __name__ == "__main__":
    main()
