"""A positive control: a small Llama-architecture model built by hand to compute the calendar problems with circles.

A small model trained on the Weekdays and Months problems fits all 193, but
none can be held out to show that it computes rather than recites
(``python -m mvf.commands.train_control --task calendar`` repeats that trial), so
this model is *constructed*, and
:mod:`mvf.trained_control` trains one on modular addition. Its weights are set
so that its computation goes through a circle, and the book's pipeline (probes,
patching, ablations) must find that circle. A negative result on a real model
means something only when the same code finds the circle here.

How it computes, on the paper's prompts ("… Two days from Monday is") and on the successor lists:

- **embeddings** (layer 0): a day name carries its start on a 7-circle, a
  month name on a 12-circle, a number word its shift on both; every token
  also has a constant coordinate (it keeps the RMS norms nearly equal) and a
  small random identity part (so that PCA and patching see more than the circles);
- **block 0, attention**: head 0 makes the last token (" is") attend only
  to the calendar names and number words and copy their circles to itself
  (the queries and keys use the slowest rotary pair, so position hardly
  matters). On the successor lists ("Monday, Tuesday,"), whose last comma
  carries a shift of one in its embedding, head 1 makes that comma attend
  to the token just before it (the fastest rotary pair, turned back one
  position) and copy that name's circle. Each head's other queries attend
  to BOS, which carries nothing;
- **block 1, MLP**: the gated SiLU products rotate the start by the shift,
  cos(a + b) = cos a cos b − sin a sin b and sin(a + b) = sin a cos b +
  cos a sin b, each product read off ``silu(G + x)·y − silu(G)·y ≈ x·y`` for a large constant G;
- **block 2**: nothing (all weights zero), so that the answer circle is the
  input of a block (``hook_resid_pre`` of layer 2), where the book's chapters look;
- **unembedding**: a name's logit is the cosine between the answer circle and the name's angle.

So the operand token keeps the start at every layer, but only layer 0's is
read (by block 0's attention); at the last token layer 1 carries the start and
the shift, and layer 2 the answer on its circle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mvf.cache import build_folder_atomically
from mvf.dates import DAYS, MONTHS
from mvf.progress import library_bars_off

D_MODEL, D_HEAD, D_MLP, N_LAYERS = 40, 16, 16, 3
VERSION = 6  # bump when the construction changes: a cached build of another version is rebuilt
SEED = 0
CONSTANT, KEY, QUERY, SINK, LIST_QUERY = 0, 1, 2, 15, 16
DAY_START, DAY_SHIFT, MONTH_START, MONTH_SHIFT = (3, 4), (5, 6), (7, 8), (9, 10)
DAY_ANSWER, MONTH_ANSWER = (11, 12), (13, 14)
IDENTITY = slice(17, 33)  # each token's small random part
# The redundant variant's second, non-circular copy of a day: a one-hot code, read by the unembedding on the lists.
REDUNDANT_DAYS = slice(33, 40)
REDUNDANT_PROFILE = "circle-control-redundant"
ONE_HOT_WEIGHT = 480.0  # the one-hot copy's logit weight, beside the answer circle's 10: it carries most of the logit difference
NORM_SQUARED = 72.0  # every embedding's squared norm; the constant coordinate (about 8.2) makes up the rest
SPECIALS = ("<unk>", "<s>", "</s>", "<pad>")


def known_cells(task: str) -> list[tuple[str, int]]:
    """Where the construction puts the value that is used on a circle: (position, layer of ``hook_resid_pre``).

    The start at the operand at layer 0 (block 0's attention reads it); the
    answer at the last token at layer 2, and on the successor lists at layer 1
    too (the copied name's circle, turned by the constant shift of one, is the
    answer's). There the paired test must find the circle: its power.
    """
    return [("operand", 0)] + [("final", layer) for layer in ((1, 2) if task.endswith("successor") else (2,))]


def _words() -> list[str]:
    """Every pre-token of every task's prompt and answer, in a fixed order."""
    from mvf import tasks

    pre_tokenize = _pre_tokenizer().pre_tokenize_str
    seen: dict[str, None] = {}
    for name in sorted(tasks.TASKS):
        for problem in tasks.task(name):
            for text in (problem.prompt, *(problem.prompt + problem.separator + n for n in problem.names)):
                seen |= dict.fromkeys(word for word, _ in pre_tokenize(text))
    return list(seen)


def _pre_tokenizer():
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])


def tokenizer():
    """A word-level tokenizer over the tasks' words (SentencePiece-style "▁" for spaces), BOS ``<s>``."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate([*SPECIALS, *_words()])}
    inner = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    inner.pre_tokenizer = _pre_tokenizer()
    inner.decoder = decoders.Metaspace()
    return PreTrainedTokenizerFast(tokenizer_object=inner, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")  # fmt: skip


def _circle(value: int, period: int) -> np.ndarray:
    return np.array([np.cos(2 * np.pi * value / period), np.sin(2 * np.pi * value / period)])


def _embeddings(vocab: dict[str, int], redundant: bool = False) -> np.ndarray:
    """``(d_vocab, d_model)``: constant, key/query flags, circles, identity noise (and the redundant copy)."""
    from mvf.tasks import NUMBER_WORDS

    rng = np.random.default_rng(SEED)
    embed = np.zeros((len(vocab), D_MODEL))
    embed[:, IDENTITY] = 0.3 * rng.standard_normal((len(vocab), IDENTITY.stop - IDENTITY.start))
    for word, i in vocab.items():
        name = word.removeprefix("▁")
        if name in DAYS:
            embed[i, list(DAY_START)] = _circle(DAYS.index(name), 7)
            if redundant:
                embed[i, REDUNDANT_DAYS.start + DAYS.index(name)] = 1.0
        if name in MONTHS:
            embed[i, list(MONTH_START)] = _circle(MONTHS.index(name), 12)
        if name in NUMBER_WORDS:
            embed[i, list(DAY_SHIFT)] = _circle(NUMBER_WORDS.index(name) + 1, 7)
            embed[i, list(MONTH_SHIFT)] = _circle(NUMBER_WORDS.index(name) + 1, 12)
        embed[i, KEY] = float(name in DAYS or name in MONTHS or name in NUMBER_WORDS)
        embed[i, QUERY] = float(word == "▁is")
        embed[i, LIST_QUERY] = float(word == ",")
        embed[i, SINK] = float(word == "<s>")
        if word == ",":  # a list's next name: its shift is one, halved as head 0's average over two tokens halves it
            embed[i, list(DAY_SHIFT)] = _circle(1, 7) / 2
            embed[i, list(MONTH_SHIFT)] = _circle(1, 12) / 2
    # Every token gets the same norm: RMSNorm then scales them all alike, and the attention's two picks weigh the same.
    embed[:, CONSTANT] = np.sqrt(NORM_SQUARED - (embed**2).sum(axis=1))
    return embed


def _mlp_products(rms: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gate ``(d_mlp, d_model)``, up ``(d_mlp, d_model)`` and down ``(d_model, d_mlp)`` of the rotation.

    Inputs arrive RMS-normalised (divided by ``rms``) and halved by the
    attention's average over two tokens; the down projection scales the answer back to unit size.
    """
    gate, up, down = np.zeros((D_MLP, D_MODEL)), np.zeros((D_MLP, D_MODEL)), np.zeros((D_MODEL, D_MLP))
    offset = 20.0 * rms / 8.0  # the constant coordinate (about 8) then gives gates of about 20 after normalisation
    scale = (2 * rms) ** 2  # each product of two halved, normalised coordinates, back to unit size
    neuron = 0
    for start, shift, answer in ((DAY_START, DAY_SHIFT, DAY_ANSWER), (MONTH_START, MONTH_SHIFT, MONTH_ANSWER)):
        (cos_a, sin_a), (cos_b, sin_b), (out_cos, out_sin) = start, shift, answer
        baselines = {}
        for y in (cos_b, sin_b):  # silu(G)·y, subtracted from every product with y
            gate[neuron, CONSTANT], up[neuron, y] = offset, 1.0
            baselines[y], neuron = neuron, neuron + 1
        for x, y, out, sign in ((cos_a, cos_b, out_cos, 1), (sin_a, sin_b, out_cos, -1),
                                (sin_a, cos_b, out_sin, 1), (cos_a, sin_b, out_sin, 1)):  # fmt: skip
            gate[neuron, [CONSTANT, x]], up[neuron, y] = [offset, 1.0], 1.0
            down[out, neuron] = sign * scale
            down[out, baselines[y]] -= sign * scale
            neuron += 1
    return gate, up, down


def _state_dict(vocab: dict[str, int], config, redundant: bool = False) -> dict[str, torch.Tensor]:
    embed = _embeddings(vocab, redundant)
    # After block 0's attention the last token adds three circles of norm 1/2: the start's and the shift's on both
    # the 7- and the 12-circle (a number word carries both).
    typical = float(np.sqrt(NORM_SQUARED / D_MODEL))  # every token's RMS
    gate, up, down = _mlp_products(float(np.sqrt((NORM_SQUARED + 0.75) / D_MODEL)))
    weights = {name: torch.ones_like(tensor) if name.endswith("norm.weight") else torch.zeros_like(tensor)
               for name, tensor in _empty_model(config).state_dict().items()}  # fmt: skip
    weights["model.embed_tokens.weight"] = torch.tensor(embed, dtype=torch.float32)
    attention = "model.layers.0.self_attn."
    q, k = torch.zeros(D_HEAD * 2, D_MODEL), torch.zeros(D_HEAD * 2, D_MODEL)
    v, o = torch.zeros(D_HEAD * 2, D_MODEL), torch.zeros(D_MODEL, D_HEAD * 2)
    # Two rotary pairs that hardly turn with position (the slowest), one that turns a radian per token (the fastest).
    slowest, slow, fastest = D_HEAD // 2 - 1, D_HEAD // 2 - 2, 0
    # Head 0: " is" reads every calendar name and number word; a list's "," reads BOS, which carries nothing.
    q[slowest, QUERY], k[slowest, KEY] = 40.0, 40.0
    q[slow, LIST_QUERY], k[slow, SINK] = 40.0, 40.0
    carried = [*DAY_START, *DAY_SHIFT, *MONTH_START, *MONTH_SHIFT]
    for head_dim, coordinate in enumerate(carried):  # values are normalised tokens: scale them back by their RMS
        v[head_dim, coordinate], o[coordinate, head_dim] = 1.0, typical
    # Head 1: a list's "," reads the name just before it (the score peaks one token back: the query is turned back by
    # the pair's one radian per token) and copies its start, halved like head 0's; " is" reads BOS. A name 7 tokens
    # back would score nearly as high (cos 6 ≈ 0.96): the lists have at most 4 names, 2 tokens apart.
    q[D_HEAD + fastest, LIST_QUERY], q[D_HEAD + fastest + D_HEAD // 2, LIST_QUERY] = 40.0 * np.cos(-1.0), 40.0 * np.sin(-1.0)
    k[D_HEAD + fastest, KEY] = 1.0 * 40.0
    q[D_HEAD + slowest, QUERY], k[D_HEAD + slowest, SINK] = 40.0, 40.0
    copied = [*DAY_START, *MONTH_START] + (list(range(REDUNDANT_DAYS.start, REDUNDANT_DAYS.stop)) if redundant else [])
    for head_dim, coordinate in enumerate(copied):
        v[D_HEAD + head_dim, coordinate], o[coordinate, D_HEAD + head_dim] = 1.0, typical / 2
    weights[attention + "q_proj.weight"], weights[attention + "k_proj.weight"] = q, k
    weights[attention + "v_proj.weight"], weights[attention + "o_proj.weight"] = v, o
    mlp = "model.layers.1.mlp."
    weights[mlp + "gate_proj.weight"] = torch.tensor(gate, dtype=torch.float32)
    weights[mlp + "up_proj.weight"] = torch.tensor(up, dtype=torch.float32)
    weights[mlp + "down_proj.weight"] = torch.tensor(down, dtype=torch.float32)
    unembed = torch.zeros(len(vocab), D_MODEL)
    for word, i in vocab.items():
        name = word.removeprefix("▁")
        if word.startswith("▁") and name in DAYS:
            unembed[i, list(DAY_ANSWER)] = 10.0 * torch.tensor(_circle(DAYS.index(name), 7), dtype=torch.float32)
            if redundant:  # on a list, the day after the copied one: a second answer, off the circle
                unembed[i, REDUNDANT_DAYS.start + (DAYS.index(name) - 1) % 7] = ONE_HOT_WEIGHT
        if word.startswith("▁") and name in MONTHS:
            unembed[i, list(MONTH_ANSWER)] = 10.0 * torch.tensor(_circle(MONTHS.index(name), 12), dtype=torch.float32)
    weights["lm_head.weight"] = unembed
    return weights


def _config(tokenizer_):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer_), hidden_size=D_MODEL, intermediate_size=D_MLP, num_hidden_layers=N_LAYERS,
        num_attention_heads=2, num_key_value_heads=2, head_dim=D_HEAD, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=False, hidden_act="silu",
        bos_token_id=tokenizer_.bos_token_id, eos_token_id=tokenizer_.eos_token_id, pad_token_id=tokenizer_.pad_token_id,
    )  # fmt: skip


def _empty_model(config):
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM(config)


def build(folder: Path, redundant: bool = False) -> Path:
    """Write the control (weights, config, tokenizer) to ``folder`` with ``save_pretrained``; reused if built.

    Deterministic: the same version and seed give the same weights.
    ``redundant``: the variant whose successor lists carry the last day twice,
    on its circle and in a one-hot code the unembedding reads too, so that
    patching the circle alone can move the answer only part of the way.
    """
    folder = Path(folder)
    marker = folder / "control.json"
    stamp = {"version": VERSION, "seed": SEED, "redundant": redundant}
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return folder

    def write(temporary: Path) -> None:
        tokenizer_ = tokenizer()
        config = _config(tokenizer_)
        model = _empty_model(config)
        model.load_state_dict(_state_dict(tokenizer_.get_vocab(), config, redundant))
        with library_bars_off():
            model.save_pretrained(temporary)
        tokenizer_.save_pretrained(temporary)
        (temporary / "control.json").write_text(json.dumps(stamp))

    build_folder_atomically(folder, write)
    return folder
