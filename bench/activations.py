"""Throughput of corpus activation collection against a bare forward pass, in the same run.

    python bench/activations.py [--hook blocks.6.hook_resid_post] [--rows 64] [--seq-len 256] [--batch-size 16] [--repeats 3]

Both sides run the embedded model on the same token batches and stop after
the hooked layer; collection also caches the activations, casts them to
float16 and writes checksummed shards. Prints tokens/s for each and the
overhead of collection in percent.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from mvf import activations, dates, models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hook", default="blocks.6.hook_resid_post")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = models.load_model("smollm2-135m", device="cpu")
    layer = activations.check_hook(model, args.hook)
    sentences = dates.calendar_sentences("days")[0] + dates.calendar_sentences("months")[0]
    # Paragraphs of ~10 sentences until the corpus fills the requested rows.
    texts, count = [], 0
    while count < args.rows * args.seq_len:
        texts.append(" ".join(sentences[10 * len(texts) % len(sentences) :][:10]))
        count += len(model.tokenizer(texts[-1], add_special_tokens=False)["input_ids"]) + 1
    tokens = activations.tokenize_corpus(model.tokenizer, texts, args.seq_len)
    n_tokens = tokens.numel()

    def bare_forward() -> None:
        with torch.no_grad():
            for i in range(0, len(tokens), args.batch_size):
                model(tokens[i : i + args.batch_size], stop_at_layer=layer + 1)

    def collection() -> None:
        with tempfile.TemporaryDirectory() as folder:
            activations.collect_corpus(
                model, "smollm2-135m", texts, args.hook, folder, seq_len=args.seq_len,
                batch_size=args.batch_size, rows_per_shard=args.batch_size * 2,
            )  # fmt: skip

    # Alternate the two and keep each one's best time, so warm-up and machine noise favour neither.
    timings: dict = {bare_forward: [], collection: []}
    for _ in range(args.repeats):
        for run, times in timings.items():
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    bare, collect = min(timings[bare_forward]), min(timings[collection])
    # collect_corpus also tokenizes the texts; that is part of its cost and stays in.
    print(f"{n_tokens} tokens up to {args.hook}, batches of {args.batch_size} x {args.seq_len}")
    print(f"bare forward: {n_tokens / bare:8.0f} tokens/s")
    print(f"collection:   {n_tokens / collect:8.0f} tokens/s")
    print(f"collection overhead: {100 * (collect / bare - 1):+.1f}%")


if __name__ == "__main__":
    main()
