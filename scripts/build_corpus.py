"""Regenerate the offline corpus: ``mvf/data/corpus.jsonl.xz`` and its provenance ``mvf/data/corpus.json``.

    python scripts/build_corpus.py sample [--batches 40] [--batch-size 32] [--seed 0]
    python scripts/build_corpus.py assemble

``sample`` draws date-rich text from the embedded SmolLM2-135M-Instruct with a
fixed seed per batch; each batch is saved atomically under
``artifacts/corpus_samples/``, so an interrupted run resumes. ``assemble``
joins the samples with running English text from Debian packages (install
them first: ``apt-get install fortunes dict-devil dict-jargon dict-gcide``),
counts tokens and day/month names, and writes the corpus and provenance.
"""

import argparse
import json
import lzma
import os
import sys
import tempfile
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mvf import corpus, models

SAMPLES = Path("artifacts/corpus_samples")
# Dictionary text is plentiful; cap it so that prose, not definitions, dominates.
GCIDE_TOKEN_CAP = 450_000


def _save_json(path: Path, payload) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as stream:
        json.dump(payload, stream)
    os.replace(temporary, path)


def sample(batches: int, batch_size: int, seed: int, max_new_tokens: int) -> None:
    network, tokenizer = models.load_gguf_transformers(models.embedded_gguf(models.profile("smollm2-135m")))
    tokenizer.padding_side = "left"
    prompts = corpus.sampling_prompts()
    SAMPLES.mkdir(parents=True, exist_ok=True)
    for batch in tqdm(range(batches), desc="sampled batches"):
        path = SAMPLES / f"batch_{batch:04d}.json"
        if path.exists():
            continue
        chosen = [prompts[(batch * batch_size + i) % len(prompts)] for i in range(batch_size)]
        chats = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in chosen]
        encoded = tokenizer(chats, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(seed + batch)
        with torch.no_grad():
            output = network.generate(
                **encoded, do_sample=True, temperature=0.8, top_p=0.95, max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        texts = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        _save_json(path, {"seed": seed + batch, "prompts": chosen, "texts": [t.strip() for t in texts]})


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
    batches = sorted(SAMPLES.glob("batch_*.json"))
    seeds, total = [], 0
    for path in batches:
        payload = json.loads(path.read_text())
        seeds.append(payload["seed"])
        for text in payload["texts"]:
            if len(text) > 40:
                documents.append({"source": "smollm2-samples", "text": text})
                total += count(text) + 1
    tokens_by_source["smollm2-samples"] = total
    with lzma.open(corpus.CORPUS_FILE, "wt", encoding="utf-8", preset=9) as stream:
        for document in documents:
            stream.write(json.dumps(document) + "\n")
    provenance = {
        "built_by": "python scripts/build_corpus.py sample && python scripts/build_corpus.py assemble",
        "tokenizer": "SmolLM2-135M-Instruct (embedded GGUF); each document ends with one EOS token",
        "documents": len(documents),
        "tokens": sum(tokens_by_source.values()),
        "tokens_by_source": tokens_by_source,
        "sources": {name: description for name, (_, description) in corpus.DEBIAN_SOURCES.items()}
        | {"smollm2-samples": "sampled from SmolLM2-135M-Instruct (Apache-2.0), temperature 0.8, top-p 0.95, "
           "prompts from mvf.corpus.sampling_prompts(), torch seed = base seed + batch index"},
        "sample_seeds": seeds,
        "gcide_token_cap": GCIDE_TOKEN_CAP,
        "name_counts": corpus.name_counts([d["text"] for d in documents]),
    }  # fmt: skip
    corpus.PROVENANCE_FILE.write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps({k: provenance[k] for k in ("documents", "tokens", "tokens_by_source")}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["sample", "assemble"])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=320)
    args = parser.parse_args()
    if args.stage == "sample":
        sample(args.batches, args.batch_size, args.seed, args.max_new_tokens)
    else:
        assemble()


if __name__ == "__main__":
    sys.exit(main())
