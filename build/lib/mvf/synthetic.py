"""Synthetic 2-D point clouds with a known character, for the definitions chapter and tests.

Each generator takes ``n`` and a numpy ``Generator`` and returns points of shape ``(n, 2)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def gaussian(n: int, rng: np.random.Generator) -> np.ndarray:
    """An isotropic Gaussian: separable (independent coordinates), not a mixture."""
    return rng.normal(size=(n, 2))


def independent_product(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform × exponential coordinates: a product of independent 1-D parts (separable)."""
    return np.column_stack([rng.uniform(-1.0, 1.0, n), rng.exponential(1.0, n)])


def line_mixture(n: int, rng: np.random.Generator, weight: float = 0.5, noise: float = 0.01) -> np.ndarray:
    """Two crossing lines; a share ``weight`` of the points lies on the first (mixture-reducible)."""
    on_first = rng.random(n) < weight
    along, across = rng.normal(size=n), noise * rng.normal(size=n)
    return np.where(on_first[:, None], np.column_stack([along, across]), np.column_stack([across + 1.0, along]))


def point_mixture(n: int, rng: np.random.Generator, clusters: int = 3, noise: float = 0.02) -> np.ndarray:
    """A few tight clusters at the corners of a triangle (a mixture of points)."""
    angles = 2 * np.pi * rng.integers(0, clusters, n) / clusters
    return np.column_stack([np.cos(angles), np.sin(angles)]) + noise * rng.normal(size=(n, 2))


def circle(n: int, rng: np.random.Generator, noise: float = 0.05, radius: float = 1.0) -> np.ndarray:
    """Points on a circle plus Gaussian noise: irreducible (high S, low M)."""
    theta = rng.uniform(0.0, 2 * np.pi, n)
    return radius * np.column_stack([np.cos(theta), np.sin(theta)]) + noise * rng.normal(size=(n, 2))


def noisy_circle(n: int, rng: np.random.Generator) -> np.ndarray:
    """A circle blurred by noise a quarter of its radius: still a ring, less cleanly."""
    return circle(n, rng, noise=0.25)


def circle_with_lines(
    n: int, rng: np.random.Generator, weight: float = 0.5, noise: float = 0.05, radius: float = 1.0
) -> np.ndarray:
    """A circle mixed with a line through its centre; ``weight`` is the share on the line."""
    on_line = rng.random(n) < weight
    ring = circle(n, rng, noise=noise, radius=radius)
    line = np.column_stack([rng.normal(size=n), noise * rng.normal(size=n)])
    return np.where(on_line[:, None], line, ring)


DISTRIBUTIONS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "gaussian": gaussian,
    "independent product": independent_product,
    "mixture of two lines": line_mixture,
    "mixture of points": point_mixture,
    "circle": circle,
    "noisy circle": noisy_circle,
}


def sample(name: str, n: int = 4096, seed: int = 0) -> np.ndarray:
    """Points ``(n, 2)`` of the named distribution, seeded."""
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {name!r}; choose one of {sorted(DISTRIBUTIONS)}.")
    return DISTRIBUTIONS[name](n, np.random.default_rng(seed))
