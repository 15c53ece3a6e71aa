"""Train the trained control (``mvf.trained_control``) and write its weights and record: ``mvf/data/trained-control/``.

    python -m mvf.commands.train_control [--steps 3000] [--out FOLDER]
    python -m mvf.commands.train_control --task calendar

The default trains the shipped model on addition modulo 59 (seeded; about
8 min on 2 CPU cores; the same machine gives the same bytes) and writes
``record.json`` beside the weights: settings, the train and held-out
accuracy every 100 steps, the time, the weights' SHA-256 and the versions.
``--task calendar`` repeats the earlier trial: the same model trained on the
book's 193 Weekdays and Months prompts, with nothing held out; its record
goes to ``bench/trained-control-calendar/``.
"""

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from mvf import control, tasks
from mvf.cache import build_folder_atomically, sha256_file
from mvf.trained_control import Training, encode, problems, shipped_folder, split, tokenizer, train


def _calendar_data(tokenizer_) -> tuple[torch.Tensor, torch.Tensor]:
    items = [p for name in ("weekdays", "months") for p in tasks.task(name)]
    ids = [[tokenizer_.bos_token_id, *tokenizer_(p.prompt, add_special_tokens=False)["input_ids"]] for p in items]
    width = max(map(len, ids))
    # Left-padded with BOS: the last position is every prompt's last token.
    ids = [[tokenizer_.bos_token_id] * (width - len(row)) + row for row in ids]
    answers = [tokenizer_(" " + p.names[p.answer], add_special_tokens=False)["input_ids"][-1] for p in items]
    return torch.tensor(ids), torch.tensor(answers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mvf.commands.train_control", description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("modular", "calendar"), default="modular",
                        help="modular addition (the shipped control) or the calendar prompts (the earlier trial)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="folder to write (default: the package's data folder)")
    parser.add_argument("--steps", type=int, default=Training.steps)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    settings = Training(steps=args.steps)
    started = time.perf_counter()
    if args.task == "modular":
        tokenizer_ = tokenizer(settings.modulus)
        ids, answers = encode(tokenizer_, problems(settings.modulus))
        trained = torch.from_numpy(split(settings))
        model, curve = train(settings, ids[trained], answers[trained], (ids[~trained], answers[~trained]), tokenizer_)
        out = args.out or shipped_folder()
    else:
        tokenizer_ = control.tokenizer()
        ids, answers = _calendar_data(tokenizer_)
        model, curve = train(settings, ids, answers, None, tokenizer_)
        out = args.out or Path("bench") / "trained-control-calendar"
    seconds = time.perf_counter() - started
    provenance = {
        "command": " ".join(["python -m mvf.commands.train_control", *(argv if argv is not None else sys.argv[1:])]),
        "task": args.task, "settings": asdict(settings), "seconds": round(seconds, 1), "curve": curve,
        "final train accuracy": curve[-1]["train accuracy"], "final held-out accuracy": curve[-1]["held-out accuracy"],
        "torch": torch.__version__, "machine": platform.machine(), "processor": platform.processor(),
        "date": time.strftime("%Y-%m-%d"),
    }  # fmt: skip

    def write(temporary: Path) -> None:
        if args.task == "modular":
            model.save_pretrained(temporary)
            tokenizer_.save_pretrained(temporary)
            provenance["weights sha256"] = sha256_file(temporary / "model.safetensors")
        (temporary / "record.json").write_text(json.dumps(provenance, indent=1))

    build_folder_atomically(out, write)
    print(f"{args.task}: train accuracy {provenance['final train accuracy']:.3f}, held-out "
          f"{provenance['final held-out accuracy']}, {seconds:.0f} s; written to {out}")  # fmt: skip


if __name__ == "__main__":
    main()
