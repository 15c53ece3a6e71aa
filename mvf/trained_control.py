"""A control that learned its circle: a small Llama-architecture model trained on modular addition.

Transformers trained on modular addition with weight decay learn to
represent the numbers on circles, one per *key frequency* k: a number a sits
at angle 2πka/p (Nanda et al. 2023, "Progress measures for grokking";
Zhong et al. 2023). The model here is trained on a held-out split of the
problems "b after a is" → (a + b) mod p, so that it must generalise rather
than memorise, and the book's pipeline (probes, patches, verdicts) is then
run on it as on a real model: nothing of its circles is set by hand.

The pipeline's probe reads a value y on the circle at angle 2πy/p. A circle
at key frequency k is that circle for the values relabelled y → k·y mod p,
and since k·(a + b) = k·a + k·b, the relabelled problems are modular
addition again (``problems(order=...)``). The key frequency is read off
the trained embedding's Fourier spectrum (``geometry.fourier_shares``), the field's
standard analysis, not chosen by the probe it then tests. Such a model
keeps each number on several circles, one per key frequency
(``geometry.key_frequencies``), so the paper's patch of one circle is expected to
carry only part of the answer, and the patch of all of them at once (ours,
``key_circles_effects``) the whole of it.

``python -m mvf.commands.train_control`` retrains the shipped weights
(seeded, about 8 min on 2 CPU cores) and writes their record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.std import tqdm

from mvf import interventions, tasks
from mvf.activations import collect_at_positions
from mvf.tasks import Problem
from mvf.tokens import prepends_bos

MODULUS = 59
PROFILE = "circle-control-trained"


@dataclass(frozen=True)
class Training:
    """The training run's settings: grokking's usual recipe (full batch, AdamW with strong weight decay)."""

    modulus: int = MODULUS
    train_fraction: float = 0.4  # of the p² problems; the rest is held out
    d_model: int = 128
    n_layers: int = 1
    n_heads: int = 4
    d_mlp: int = 256
    steps: int = 3000
    learning_rate: float = 3e-3
    weight_decay: float = 1.0
    seed: int = 0


def numbers(modulus: int = MODULUS) -> tuple[str, ...]:
    """The values' names, in numeric order: "0" … "p−1"."""
    return tuple(str(i) for i in range(modulus))


def problems(modulus: int = MODULUS, order: np.ndarray | None = None) -> list[Problem]:
    """Every problem "b after a is" → (a + b) mod p, ``start`` a, ``shift`` b, in the order of ``order``.

    ``order``: ``(p,)`` the number at each position of the circle the probe
    reads (``frequency_order``); the identity by default. ``start``, ``shift``
    and ``answer`` are positions on it, so that ``answer = start + shift``
    mod p holds on every circle order that is a multiple of the numbers.
    """
    order = np.arange(modulus) if order is None else np.asarray(order)
    if sorted(order.tolist()) != list(range(modulus)):
        raise ValueError(f"order must be a permutation of 0..{modulus - 1}.")
    names = tuple(str(int(n)) for n in order)
    return [Problem(f"{names[b]} after {names[a]} is", a, b, (a + b) % modulus, names)
            for a in range(modulus) for b in range(modulus)]  # fmt: skip


def frequency_order(k: int, modulus: int = MODULUS) -> np.ndarray:
    """``(p,)``: the number at position y of the frequency-k circle, the one at angle 2πky/p, i.e. k⁻¹·y mod p."""
    if k % modulus == 0:
        raise ValueError(f"frequency {k} is a multiple of the modulus {modulus}: it has no circle.")
    return (pow(k, -1, modulus) * np.arange(modulus)) % modulus


def tokenizer(modulus: int = MODULUS):
    """A word-level tokenizer over the numbers and the prompt's words ("▁" for spaces), BOS ``<s>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>", "<pad>", "▁after", "▁is", *(f"▁{n}" for n in numbers(modulus))]
    inner = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.Metaspace()
    inner.decoder = decoders.Metaspace()
    return PreTrainedTokenizerFast(tokenizer_object=inner, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")  # fmt: skip


def _config(settings: Training, tokenizer_):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer_), hidden_size=settings.d_model, intermediate_size=settings.d_mlp,
        num_hidden_layers=settings.n_layers, num_attention_heads=settings.n_heads, num_key_value_heads=settings.n_heads,
        max_position_embeddings=32, rms_norm_eps=1e-6, tie_word_embeddings=False, hidden_act="silu",
        bos_token_id=tokenizer_.bos_token_id, eos_token_id=tokenizer_.eos_token_id, pad_token_id=tokenizer_.pad_token_id,
    )  # fmt: skip


def split(settings: Training) -> np.ndarray:
    """``(p²,)`` booleans: which problems (in ``problems()``'s order) are trained on; seeded."""
    n = settings.modulus**2
    chosen = np.random.default_rng(settings.seed).permutation(n)[: round(settings.train_fraction * n)]
    return np.isin(np.arange(n), chosen)


def encode(tokenizer_, items: list[Problem]) -> tuple[torch.Tensor, torch.Tensor]:
    """BOS + prompt ids ``(n, length)`` (every prompt has the same length) and answer ids ``(n,)``."""
    prompts = [[tokenizer_.bos_token_id, *tokenizer_(p.prompt, add_special_tokens=False)["input_ids"]] for p in items]
    answers = [tokenizer_(" " + p.names[p.answer], add_special_tokens=False)["input_ids"][-1] for p in items]
    return torch.tensor(prompts), torch.tensor(answers)


def _accuracy(model, ids: torch.Tensor, answers: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(ids).logits[:, -1].argmax(-1) == answers).float().mean())


def train(
    settings: Training, ids: torch.Tensor, answers: torch.Tensor, held_out: tuple[torch.Tensor, torch.Tensor] | None, tokenizer_
):
    """Train on ``ids`` ``(n, length)`` → ``answers`` ``(n,)``; returns the model and the accuracy curve (every 100 steps)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(settings.seed)
    model = LlamaForCausalLM(_config(settings, tokenizer_))
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay,
                                  betas=(0.9, 0.98))  # fmt: skip
    curve = []
    bar = tqdm(range(settings.steps + 1), desc="training", mininterval=5)
    for step in bar:
        if step % 100 == 0:
            model.eval()
            curve.append({"step": step, "train accuracy": _accuracy(model, ids, answers),
                          "held-out accuracy": None if held_out is None else _accuracy(model, *held_out)})  # fmt: skip
            bar.set_postfix({key: value for key, value in curve[-1].items() if key != "step"}, refresh=False)
            model.train()
        if step == settings.steps:
            break
        loss = torch.nn.functional.cross_entropy(model(ids).logits[:, -1], answers)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval(), curve


def key_circles_effects(
    model, problems: list[Problem], order: np.ndarray, frequencies: list[int], hook: str, position: str,
    per_problem: int | None = 1, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Ours: the circle patch of every key frequency at once, against the paper's baselines; ``interventions.summarize``'s table.

    ``problems`` on the circle ``order`` (``problems(order=...)``). A probe
    per frequency f reads the number n (``order[value]``) at angle 2πfn/p, all
    in one PCA space of 2 · len(frequencies) dimensions; the
    ``interventions.KEY_CIRCLES`` row sets every circle of the mean activation
    to the new value at once, its nulls (``interventions.PAIRED``) do the same
    through probes of a shuffled order of the numbers and through a random
    subspace of the same dimension (``interventions.key_methods``).
    """
    period = problems[0].period
    where = np.array([tasks.positions(model.tokenizer, p, prepends_bos(model))[position] for p in problems])
    clean = collect_at_positions(model, [p.prompt for p in problems], where, [hook])[hook].numpy().astype(np.float64)
    values = interventions.read_values(problems, position)
    index, target = interventions.target_pairs(problems, position, per_problem, seed)
    donors = interventions.matching_problems(problems, index, target, position)
    # The probes read the numbers (order[value]), so values and new values enter in that numbering.
    chosen = interventions.key_methods(clean, order[values], period, frequencies, donors,
                                       interventions.shuffled_order(period, seed), seed)  # fmt: skip
    mean = np.broadcast_to(clean.mean(axis=0), (len(index), clean.shape[1]))
    replaced = {"before": clean[index], "full patch": clean[donors], "mean ablation": mean}
    replaced |= {name: method(index, order[target]) for name, method in chosen.items()}
    return interventions.measure(model, problems, index, donors, hook, where, replaced, seed=seed)


def number_embeddings(model, tokenizer_, modulus: int = MODULUS) -> np.ndarray:
    """``(p, d_model)``: the input embedding of each number's token, in numeric order."""
    ids = [tokenizer_.convert_tokens_to_ids(f"▁{n}") for n in numbers(modulus)]
    weight = model.get_input_embeddings().weight if hasattr(model, "get_input_embeddings") else model.embed.W_E
    return weight[ids].detach().numpy().astype(np.float64)


def shipped_folder() -> Path:
    """The trained weights, tokenizer and record shipped inside the package."""
    return Path(str(resources.files("mvf") / "data" / "trained-control"))


def record(folder: Path | None = None) -> dict:
    """The shipped training record (settings, accuracy curve, timing, versions); ``FileNotFoundError`` names the fix."""
    path = (folder or shipped_folder()) / "record.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m mvf.commands.train_control` to train and write it.")
    return json.loads(path.read_text())
