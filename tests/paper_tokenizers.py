"""The paper's tokenizers, built offline from files that PyPI packages ship (test dependencies, installed --no-deps).

Mistral 7B v0.1's SentencePiece model comes with ``mistral-common``; Llama 3's
tiktoken BPE with ``llama-models``. Mistral's is built twice: as transformers
builds it from ``tokenizer.model`` (a Metaspace pre-tokenizer that prepends
"▁" to the first word only), and as the hub's ``tokenizer.json`` does it (a
normaliser that prepends "▁" to the input and turns every space into "▁"),
under which ``" Monday"`` alone encodes to ``▁▁`` + ``M`` + ``ond`` + ``ay``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tokenizers import normalizers
from transformers import LlamaTokenizer, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import TikTokenConverter


def mistral(folder: Path, metaspace_normaliser: bool) -> LlamaTokenizer:
    """Mistral 7B v0.1's tokenizer (32 000 pieces, BOS ``<s>``), saved in ``folder`` as ``tokenizer.model``."""
    import mistral_common

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1", folder / "tokenizer.model")
    tokenizer = LlamaTokenizer.from_pretrained(folder)
    if metaspace_normaliser:
        tokenizer._tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tokenizer._tokenizer.pre_tokenizer = None
    return tokenizer


def llama3() -> PreTrainedTokenizerFast:
    """Llama 3's tokenizer (128 000 BPE ranks + 256 specials, BOS ``<|begin_of_text|>``)."""
    import llama_models.llama3.tokenizer as reference

    source = Path(reference.__file__).read_text()
    pattern = re.search(r'pat_str = r"(.+)"', source).group(1)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
                "<|eot_id|>", "<|python_tag|>", "<|image|>"]
    specials += [f"<|reserved_special_token_{2 + i}|>" for i in range(256 - len(specials))]
    converted = TikTokenConverter(
        vocab_file=str(Path(reference.__file__).parent / "tokenizer.model"), pattern=pattern,
        extra_special_tokens=specials,
    ).converted()
    return PreTrainedTokenizerFast(tokenizer_object=converted, bos_token="<|begin_of_text|>",
                                   eos_token="<|end_of_text|>")
