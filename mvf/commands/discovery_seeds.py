"""Cluster and rank the SAE's features under several clustering seeds: ``mvf/data/discovery/<model>-seeds.json``.

    python -m mvf.commands.discovery_seeds [--model smollm2-135m] [--seeds 5] [--n-tokens 60000] [--n-clusters 200]

The discovery chapter's pipeline (its corpus sample, spectral clustering of
the decoder directions, the paper's ranking) with clustering seeds 0, 1, …:
per seed, the adjusted Rand index against seed 0, the rank of the calendar
clusters (``discovery.calendar_like``) and how well seed 0's calendar
clusters are found again (``discovery.best_match``). Ranking all clusters
takes about a minute a seed on 2 CPU cores, more than a book build can spend,
so the chapter shows this file and checks its seed-0 and seed-1 rows live.
"""

import argparse
import json
import os
import sys
import time
from datetime import date

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from tqdm.std import tqdm  # noqa: E402

from mvf import activations, corpus, discovery, models, results, sae  # noqa: E402
from mvf.cache import write_atomically  # noqa: E402
from mvf.dates import DAYS, MONTHS  # noqa: E402

KINDS = {"day": DAYS, "month": MONTHS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=models.DEFAULT_MODEL)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-tokens", type=int, default=60_000)
    parser.add_argument("--n-clusters", type=int, default=200)
    args = parser.parse_args()

    started = time.monotonic()
    model = models.load_model(args.model)
    chosen = sae.sae_for_model(args.model, model.cfg.d_model, device=str(model.cfg.device))
    decoder = chosen.sae.W_dec.detach().float().cpu().numpy()
    texts = corpus.calendar_rich_sample(corpus.corpus_texts(), n_chars=4 * args.n_tokens, seed=0)
    sample = sae.encode_sample(model, args.model, chosen, texts, activations.CORPUS_CACHE)
    rows, base = [], None
    for seed in tqdm(range(args.seeds), desc="seeds"):
        labels = discovery.spectral_clusters(decoder, args.n_clusters, seed=seed)
        table = discovery.rank_clusters(sample.codes, decoder, labels, sample.strings, seed=0, watch=KINDS)
        row = {"seed": seed, "ARI with seed 0": 1.0 if base is None else discovery.cluster_stability(base["labels"], labels)}
        found = {}
        for kind, words in KINDS.items():
            qualifying = discovery.calendar_like(table, kind, len(words))
            found[kind] = np.flatnonzero(labels == table.loc[qualifying[0], "cluster"]) if len(qualifying) else None
            row[f"{kind} cluster rank"] = int(qualifying[0]) + 1 if len(qualifying) else None
            row[f"{kind} cluster features"] = None if found[kind] is None else found[kind].tolist()
            reference = found[kind] if base is None else base["found"][kind]
            row[f"{kind} cluster match with seed 0"] = (None if reference is None
                                                        else discovery.best_match(reference, labels)[1])  # fmt: skip
        rows.append(row | {"ranked": len(table)})
        base = base or {"labels": labels, "found": found}
    affinity = discovery.angular_affinity(discovery.similarities(decoder))[~np.eye(len(decoder), dtype=bool)]
    payload = {
        "settings": {"model": args.model, "sae": chosen.name, "n_tokens": args.n_tokens, "n_clusters": args.n_clusters,
                     "texts": activations.corpus_hash(texts), "decoder": discovery.decoder_fingerprint(decoder)},
        "provenance": {"command": "python -m mvf.commands.discovery_seeds " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
                       "date": date.today().isoformat(), "hardware": results.hardware(), "versions": results.versions(),
                       "minutes": round((time.monotonic() - started) / 60, 1)},
        "affinity": {"mean": float(affinity.mean()), "sd": float(affinity.std())},
        "seeds": rows,
    }  # fmt: skip
    path = discovery.seeds_path(args.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda stream: stream.write(json.dumps(payload, indent=1).encode()))
    print(f"{path}: {args.seeds} seeds in {payload['provenance']['minutes']} min")


if __name__ == "__main__":
    sys.exit(main())
