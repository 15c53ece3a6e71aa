"""Throughput of corpus activation collection against a bare forward pass, in the same run.

    python bench/activations.py [--hook blocks.6.hook_resid_post] [--rows 64] [--seq-len 256] [--batch-size 16] [--repeats 5]

Both sides run the embedded model on the same token batches and stop after
the hooked layer; collection also caches the activations, casts them to
float16 and writes checksummed shards. Prints tokens per user CPU second for each
and the overhead of collection in percent (user CPU time of the process,
best of the repeats each, and the median of the paired ratios).
"""

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from mvf import activations, dates, models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hook", default="blocks.6.hook_resid_post")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch's threads (1: as each chapter's kernel runs; "
                        "more add OpenMP's spinning to the CPU time)")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

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

    # User CPU time of this process, which a busy neighbour does not inflate as it does wall time (best-of wall times
    # moved by ±10 % between runs on a shared 2-core machine), nor the kernel's page-fault handling (system time
    # moved by 0 to 3.6 s in runs of 11 s). Alternate the two, so that warm-up and drifts favour neither.
    timings: dict = {bare_forward: [], collection: []}
    for _ in range(args.repeats):
        for run, times in timings.items():
            start = os.times().user
            run()
            times.append(os.times().user - start)
    bare, collect = min(timings[bare_forward]), min(timings[collection])
    ratios = sorted(c / b for b, c in zip(timings[bare_forward], timings[collection]))
    # collect_corpus also tokenizes the texts; that is part of its cost and stays in.
    print(f"{n_tokens} tokens up to {args.hook}, batches of {args.batch_size} x {args.seq_len}")
    print(f"bare forward: {n_tokens / bare:8.0f} tokens per user CPU second")
    print(f"collection:   {n_tokens / collect:8.0f} tokens per user CPU second")
    print(f"collection overhead: {100 * (collect / bare - 1):+.1f}% (best of {args.repeats} each; median of the paired "
          f"ratios {100 * (ratios[len(ratios) // 2] - 1):+.1f}%)")


if __name__ == "__main__":
    main()
