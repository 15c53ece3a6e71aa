"""Regenerate the offline corpus: ``mvf/data/corpus.jsonl.xz`` and its provenance ``mvf/data/corpus.json``.

    python -m mvf.commands.build_corpus sample --prompts stories --batches 5 --batch-size 32 --max-new-tokens 320
    python -m mvf.commands.build_corpus sample --prompts calendar --batches 96 --batch-size 128 --max-new-tokens 160
    python -m mvf.commands.build_corpus assemble

``sample`` draws text from the embedded SmolLM2-135M-Instruct with a fixed
seed per batch: short stories, letters and schedules that mention dates
(``mvf.corpus.sampling_prompts``), or lists with one day or month name per line
(``mvf.corpus.calendar_prompts``), which are dense in calendar names. Each
batch is saved atomically under ``artifacts/<prompts>_samples/`` with the device
and library versions that drew it, so an interrupted run resumes. Generation
runs at about 100 tokens a second on 2 CPU cores whatever the batch size: a
calendar batch of 128 took 3.7 minutes. On a GPU, ``--device cuda --shard i/n``
splits the batches over n processes (``scripts/gpu_sample_calendar.sh``); a
batch's seed is its index whichever process draws it, but a GPU draws other
samples than a CPU from the same seed (other arithmetic). ``assemble``
joins the samples with running English text from Debian packages (install
them first: ``apt-get install fortunes dict-devil dict-jargon dict-gcide``),
counts tokens and day/month names, and writes the corpus and provenance.
"""

import argparse
import json
import lzma
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mvf import corpus, models
from mvf.dates import DAYS, MONTHS
from mvf.cache import write_atomically

# Each prompt set: its prompts, where its batches go, the corpus source name of its documents.
PROMPT_SETS = {
    "stories": (corpus.sampling_prompts, Path("artifacts/corpus_samples"), "smollm2-samples"),
    "calendar": (corpus.calendar_prompts, Path("artifacts/calendar_samples"), "smollm2-calendar-lists"),
}
# Dictionary text is plentiful; cap it so that prose, not definitions, dominates.
GCIDE_TOKEN_CAP = 450_000


def _save_json(path: Path, payload) -> None:
    write_atomically(path, lambda stream: stream.write(json.dumps(payload).encode()))


def _write_documents(stream, documents: list[dict]) -> None:
    with lzma.open(stream, "wt", encoding="utf-8", preset=9) as text:
        for document in documents:
            text.write(json.dumps(document) + "\n")


def _drawn_on(device: str) -> str:
    import transformers

    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    return f"{name}, torch {torch.__version__}, transformers {transformers.__version__}"


def sample(prompt_set: str, batches: int, batch_size: int, seed: int, max_new_tokens: int, device: str, shard: tuple[int, int]) -> None:
    """Draw the batches of ``prompt_set`` not yet saved; ``shard = (i, n)`` takes only the batches with index % n == i."""
    network, tokenizer = models.load_gguf_transformers(models.embedded_gguf(models.profile("smollm2-135m")), device)
    tokenizer.padding_side = "left"
    make_prompts, folder, _ = PROMPT_SETS[prompt_set]
    prompts = make_prompts()
    folder.mkdir(parents=True, exist_ok=True)
    index, count = shard
    drawn_on = _drawn_on(device)
    for batch in tqdm(range(index, batches, count), desc=f"sampled batches ({prompt_set}, shard {index}/{count})"):
        path = folder / f"batch_{batch:04d}.json"
        if path.exists():
            continue
        chosen = [prompts[(batch * batch_size + i) % len(prompts)] for i in range(batch_size)]
        chats = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in chosen]
        encoded = tokenizer(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        torch.manual_seed(seed + batch)
        with torch.no_grad():
            output = network.generate(
                **encoded, do_sample=True, temperature=0.8, top_p=0.95, max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        texts = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        _save_json(path, {"seed": seed + batch, "max_new_tokens": max_new_tokens, "drawn_on": drawn_on,
                          "prompts": chosen, "texts": [t.strip() for t in texts]})  # fmt: skip


def assemble() -> None:
    _, tokenizer = models.load_gguf_transformers(models.embedded_gguf(models.profile("smollm2-135m")))
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    documents, tokens_by_source = [], {}
    for name in corpus.DEBIAN_SOURCES:
        total = 0
        for text in corpus.debian_documents(name):
            if name == "gcide" and total >= GCIDE_TOKEN_CAP:
                break
            documents.append({"source": name, "text": text})
            total += count(text) + 1
        tokens_by_source[name] = total
    sample_sets = {}
    for prompt_set, (make_prompts, folder, source) in PROMPT_SETS.items():
        batches = sorted(folder.glob("batch_*.json"))
        if not batches:
            raise FileNotFoundError(f"{folder} holds no batches: run `python -m mvf.commands.build_corpus sample --prompts {prompt_set}` first.")
        seeds, total, shapes, drawn_on = [], 0, set(), {}
        for path in batches:
            payload = json.loads(path.read_text())
            seeds.append(payload["seed"])
            drawn_on.setdefault(payload["drawn_on"], []).append(payload["seed"])
            shapes.add((len(payload["prompts"]), payload["max_new_tokens"]))
            for text in payload["texts"]:
                if len(text) > 40:
                    documents.append({"source": source, "text": text})
                    total += count(text) + 1
        if len(shapes) > 1:
            raise ValueError(f"{folder} mixes batches of different sizes or lengths {sorted(shapes)}: sample them again.")
        (batch_size, max_new_tokens), = shapes
        tokens_by_source[source] = total
        sample_sets[source] = {"prompts": f"mvf.corpus.{make_prompts.__name__}()", "seeds": seeds,
                               "batch_size": batch_size, "max_new_tokens": max_new_tokens, "seeds_by_device": drawn_on,
                               "command": f"python -m mvf.commands.build_corpus sample --prompts {prompt_set} --batches "
                                          f"{len(batches)} --batch-size {batch_size} --max-new-tokens {max_new_tokens}"}  # fmt: skip
        if any(not device.startswith("cpu") for device in drawn_on):
            sample_sets[source]["gpu_batches_drawn_by"] = "sh scripts/gpu_sample_calendar.sh: that command with --device cuda --shard i/n"
    write_atomically(corpus.CORPUS_FILE, lambda stream: _write_documents(stream, documents))
    by_source = {source: corpus.name_counts([d["text"] for d in documents if d["source"] == source]) for source in tokens_by_source}
    sampled = "sampled from SmolLM2-135M-Instruct (Apache-2.0), temperature 0.8, top-p 0.95, torch seed = base seed + batch index"
    provenance = {
        "built_by": " && ".join([entry["command"] for entry in sample_sets.values()] + ["python -m mvf.commands.build_corpus assemble"]),
        "tokenizer": "SmolLM2-135M-Instruct (embedded GGUF); each document ends with one EOS token",
        "documents": len(documents),
        "tokens": sum(tokens_by_source.values()),
        "tokens_by_source": tokens_by_source,
        "sources": {name: description for name, (_, description) in corpus.DEBIAN_SOURCES.items()}
        | {"smollm2-samples": f"generated: stories, letters and schedules that mention dates, {sampled}",
           "smollm2-calendar-lists": f"generated: lists with one day or month name per line, {sampled}"},
        "sample_sets": sample_sets,
        "gcide_token_cap": GCIDE_TOKEN_CAP,
        "name_counts": {name: sum(counts[name] for counts in by_source.values()) for name in DAYS + MONTHS},
        "name_counts_by_source": by_source,
    }  # fmt: skip
    corpus.PROVENANCE_FILE.write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps({k: provenance[k] for k in ("documents", "tokens", "tokens_by_source")}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["sample", "assemble"])
    parser.add_argument("--prompts", choices=sorted(PROMPT_SETS), default="calendar")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=320)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    parser.add_argument("--shard", default="0/1", help="i/n: draw only the batches whose index %% n == i")
    args = parser.parse_args()
    index, _, count = args.shard.partition("/")
    if not (index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        parser.error(f"--shard {args.shard}: give i/n with 0 <= i < n, e.g. 0/4.")
    if args.stage == "sample":
        sample(args.prompts, args.batches, args.batch_size, args.seed, args.max_new_tokens, args.device, (int(index), int(count)))
    else:
        assemble()


if __name__ == "__main__":
    sys.exit(main())
