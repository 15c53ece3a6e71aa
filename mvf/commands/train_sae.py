"""Retrain the embedded model's SAE and measure it: writes ``mvf/data/sae-smollm2/``.

    python -m mvf.commands.train_sae [--hook blocks.5.hook_resid_post] [--d-sae 4608] [--k 24] [--epochs 1.0] [--seed 0]

The defaults reproduce the shipped SAE (8 × d_model features, at the layer the
circles chapter finds most circular; the times it took are in its
``provenance.json``). Weights are stored in float16 (loaded as float32).

Activations come from the offline corpus (``mvf.corpus``) through the
embedded SmolLM2 with raw Hugging Face weights (no compatibility mode), and
are cached under ``activations.CORPUS_CACHE`` (resumable). ``--held-out-rows``
rows of the corpus, drawn with the seed, are held out: L0, variance explained,
dead features and the language-model loss with the SAE spliced in are
measured on them and written to ``provenance.json``. Each row's first token
and tokens with massive norms (attention sinks, ``mvf.sae.ordinary_tokens``)
are left out.
"""

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig  # noqa: E402
from sae_lens.config import SAETrainerConfig  # noqa: E402
from sae_lens.training.sae_trainer import SAETrainer  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from mvf import activations, corpus, models, sae, tokens  # noqa: E402

SEQ_LEN = 128
DEAD_WINDOW_TOKENS = 100_000  # tokens without firing before a feature counts as dead (and gets the auxiliary loss)


def batches(train: np.ndarray, batch_size: int, seed: int):
    """An endless stream of shuffled float32 batches ``(batch_size, d_in)``, one permutation per epoch."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(train))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield torch.from_numpy(train[order[start : start + batch_size]].astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hook", default="blocks.5.hook_resid_post")
    parser.add_argument("--d-sae", type=int, default=4608)
    parser.add_argument("--k", type=int, default=24)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--held-out-rows", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = models.load_model("smollm2-135m", device="cpu")
    texts = corpus.corpus_texts()
    started = time.monotonic()
    acts = activations.collect_corpus(model, "smollm2-135m", texts, args.hook, activations.CORPUS_CACHE, seq_len=SEQ_LEN)
    collected = time.monotonic()
    n_rows = len(acts) // SEQ_LEN
    held_rows = sae.held_out_rows(n_rows, args.held_out_rows, args.seed)
    held_tokens = np.zeros(n_rows, dtype=bool)
    held_tokens[held_rows] = True
    held_tokens = np.repeat(held_tokens, SEQ_LEN)
    max_norm = sae.massive_norm_threshold(acts[~held_tokens][::97])
    keep = sae.ordinary_tokens(acts, SEQ_LEN, max_norm)
    train, held_out = acts[keep & ~held_tokens], acts[keep & held_tokens].astype(np.float32)

    # Inputs scaled to a fixed average norm while training (folded into the weights on save); dead features
    # (no firing for DEAD_WINDOW_TOKENS) are revived by TopK's auxiliary loss.
    cfg = TopKTrainingSAEConfig(
        d_in=model.cfg.d_model, d_sae=args.d_sae, k=args.k, dtype="float32", device="cpu",
        normalize_activations="expected_average_only_in",
    )  # fmt: skip
    trainer_cfg = SAETrainerConfig(
        total_training_samples=int(args.epochs * len(train)), train_batch_size_samples=args.batch_size,
        lr=args.lr, lr_end=args.lr / 10, lr_warm_up_steps=20, lr_scheduler_name="cosineannealing", device="cpu",
        dead_feature_window=DEAD_WINDOW_TOKENS // args.batch_size, n_batches_for_norm_estimate=50,
    )  # fmt: skip
    trained = SAETrainer(trainer_cfg, TopKTrainingSAE(cfg), batches(train, args.batch_size, args.seed)).fit()
    trained.save_inference_model(sae.EMBEDDED_SAE)
    weights = sae.EMBEDDED_SAE / "sae_weights.safetensors"
    save_file({name: tensor.to(torch.float16) for name, tensor in load_file(weights).items()}, weights)
    weights.chmod(0o644)  # an ordinary shipped file (SAELens writes it private)
    finished = time.monotonic()

    inference = sae.load_sae_from_disk(sae.EMBEDDED_SAE)
    # The spliced loss runs the whole model: 64 of the held-out rows, drawn with the seed (the rows are in corpus order).
    held_out_ids = activations.tokenize_corpus(model.tokenizer, texts, SEQ_LEN, tokens.prepends_bos(model))[held_rows]
    held_out_ids = held_out_ids[np.random.default_rng(args.seed).permutation(len(held_rows))[:64]]
    measured = sae.quality(inference, held_out) | sae.spliced_loss(model, inference, args.hook, held_out_ids, max_norm)
    provenance = {
        "model": "smollm2-135m",
        "hook": args.hook,
        "activation_mode": "raw Hugging Face weights (TransformerBridge without enable_compatibility_mode)",
        "architecture": f"TopK SAE (SAELens {TopKTrainingSAE.__module__.split('.')[0]}), k={args.k}",
        "d_sae": args.d_sae,
        "seed": args.seed,
        "command": "python -m mvf.commands.train_sae " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "corpus": {"sha": activations.corpus_hash(texts), "seq_len": SEQ_LEN, "train_tokens": len(train),
                   "held_out_rows": args.held_out_rows, "held_out_tokens": len(held_out)},
        "stored_dtype": "float16",
        "minutes": {"collect activations": round((collected - started) / 60, 1), "train": round((finished - collected) / 60, 1)},
        "max_norm": max_norm,
        "excluded_share": float(1 - keep.mean()),
        "quality_on_held_out": measured | {"loss_measured_on_tokens": int(held_out_ids.numel())},
    }  # fmt: skip
    (sae.EMBEDDED_SAE / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance["quality_on_held_out"], indent=2))


if __name__ == "__main__":
    main()
