"""Retrain the embedded model's SAE and measure it: writes ``mvf/data/sae-smollm2/``.

    python scripts/train_sae.py [--hook blocks.5.hook_resid_post] [--d-sae 3072] [--k 24] [--epochs 1.5] [--seed 0]

The defaults reproduce the shipped SAE (about 25 minutes on 2 CPU cores with
the activations cached; collecting them first takes about 10 more).

Activations come from the offline corpus (``mvf.corpus``) through the
embedded SmolLM2 with raw Hugging Face weights (no compatibility mode), and
are cached under ``activations.CORPUS_CACHE`` (resumable). The last
``--held-out-rows`` rows of the corpus are held out: L0, variance explained,
dead features and the language-model loss with the SAE spliced in are
measured on them and written to ``provenance.json``. Each row's first token
and tokens with massive norms (attention sinks, ``mvf.sae.ordinary_tokens``)
are left out.
"""

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig  # noqa: E402
from sae_lens.config import SAETrainerConfig  # noqa: E402
from sae_lens.training.sae_trainer import SAETrainer  # noqa: E402

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
    parser.add_argument("--d-sae", type=int, default=3072)
    parser.add_argument("--k", type=int, default=24)
    parser.add_argument("--epochs", type=float, default=1.5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--held-out-rows", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = models.load_model("smollm2-135m", device="cpu")
    texts = corpus.corpus_texts()
    acts = activations.collect_corpus(model, "smollm2-135m", texts, args.hook, activations.CORPUS_CACHE, seq_len=SEQ_LEN)
    split = len(acts) - args.held_out_rows * SEQ_LEN
    max_norm = sae.massive_norm_threshold(acts[:split:97])
    keep = sae.ordinary_tokens(acts, SEQ_LEN, max_norm)
    train, held_out = acts[:split][keep[:split]], acts[split:][keep[split:]].astype(np.float32)

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

    inference = sae.load_sae_from_disk(sae.EMBEDDED_SAE)
    held_out_ids = activations.tokenize_corpus(model.tokenizer, texts, SEQ_LEN, tokens.prepends_bos(model))[-args.held_out_rows :]
    measured = sae.quality(inference, held_out) | sae.spliced_loss(model, inference, args.hook, held_out_ids[:64], max_norm)
    provenance = {
        "model": "smollm2-135m",
        "hook": args.hook,
        "activation_mode": "raw Hugging Face weights (TransformerBridge without enable_compatibility_mode)",
        "architecture": f"TopK SAE (SAELens {TopKTrainingSAE.__module__.split('.')[0]}), k={args.k}",
        "d_sae": args.d_sae,
        "seed": args.seed,
        "command": "python scripts/train_sae.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "corpus": {"sha": activations.corpus_hash(texts), "seq_len": SEQ_LEN, "train_tokens": len(train),
                   "held_out_rows": args.held_out_rows, "held_out_tokens": len(held_out)},
        "max_norm": max_norm,
        "excluded_share": float(1 - keep.mean()),
        "quality_on_held_out": measured | {"loss_measured_on_tokens": int(held_out_ids[:64].numel())},
    }  # fmt: skip
    (sae.EMBEDDED_SAE / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance["quality_on_held_out"], indent=2))


if __name__ == "__main__":
    main()
