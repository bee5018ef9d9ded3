"""A tiny logistic regression over the textcat score and VADER's sentiment scores.

Why: VADER's lexicon knows words the from-scratch textcat saw too rarely; combined, dev F1 rises
by about two points for ~0.09 ms per message. It is fitted on a slice of GoEmotions *train* held
out from the textcat's training (never on dev, which only picks the threshold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

FEATURES = ("textcat_logit", "vader_compound", "vader_neg", "vader_pos")


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def features(p: float, vader: dict[str, float]) -> list[float]:
    return [logit(p), vader["compound"], vader["neg"], vader["pos"]]


@dataclass(frozen=True)
class Stacker:
    weights: tuple[float, ...]
    bias: float

    def score(self, x: Sequence[float]) -> float:
        z = self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))
        return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


def fit(xs: Sequence[Sequence[float]], ys: Sequence[bool], *, l2: float = 1e-3,
        epochs: int = 300, lr: float = 0.5) -> Stacker:
    """Full-batch gradient descent on the log loss (a few thousand rows, four features)."""
    import numpy as np

    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    w = np.zeros(z.shape[1])
    b = 0.0
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad = p - y
        w -= lr * (z.T @ grad / len(y) + l2 * w)
        b -= lr * grad.mean()
    # Fold the standardisation into the weights so scoring needs no statistics.
    weights = w / std
    bias = b - float((w * mean / std).sum())
    return Stacker(tuple(float(v) for v in weights), float(bias))
