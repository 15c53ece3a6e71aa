"""Another machine's rounding, on this one: seeded relative noise on a model's weights, asked for by ``MVF_PERTURB``.

Two x86-64 machines give the same chapter slightly different activations (their
matrix products add in another order); a headline that moves far under that is
ill-conditioned. ``MVF_PERTURB="1e-6:3"`` makes :func:`mvf.models.load_model`
multiply every floating-point weight by ``1 + 1e-6 · z`` (``z`` standard normal,
seed 3). The model keeps the fingerprint of its unperturbed weights: it stands
for the same checkpoint, so stored sweeps and caches keyed by it still apply.
"""

from __future__ import annotations

import os

import torch

ENV = "MVF_PERTURB"


def setting(text: str | None = None) -> tuple[float, int] | None:
    """``(relative size, seed)`` from ``MVF_PERTURB`` (or ``text``), None when unset; ``ValueError`` when malformed."""
    text = os.environ.get(ENV) if text is None else text
    if not text:
        return None
    try:
        size, seed = text.split(":")
        return float(size), int(seed)
    except ValueError:
        raise ValueError(f"{ENV}={text!r}: expected '<relative size>:<seed>', e.g. '1e-6:3'") from None


def perturb(model: torch.nn.Module, size: float, seed: int) -> None:
    """Multiply every floating-point parameter of ``model`` by ``1 + size · z`` in place, ``z`` seeded by ``seed``."""
    from mvf.activations import weights_fingerprint

    fingerprint = weights_fingerprint(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.is_floating_point():
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
                parameter.mul_(1 + size * noise.to(parameter.device, parameter.dtype))
    model.mvf_fingerprint = fingerprint


def apply_if_asked(model: torch.nn.Module) -> None:
    """:func:`perturb` ``model`` as ``MVF_PERTURB`` asks, if it does."""
    if (asked := setting()) is not None:
        perturb(model, *asked)
