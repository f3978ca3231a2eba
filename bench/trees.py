"""Gradient-boosted regression trees, small enough to write out as JSON and evaluate on the Pi.

Least-squares boosting (Friedman 2001) of depth-2 trees on the residuals of the linear blend, with
shrinkage: the trees bend the blend where it is off (it grows faster than the crowd). Training is
pure Python over a few thousand windows (no numpy in the venv, and no heavy ML runtime anywhere);
the trees come out as `sensor.estimate.count_model.Tree` values, already scaled by the shrinkage.

The hyperparameters were fixed before the held-out run and not tuned on it: 60 rounds, shrinkage
0.1, depth 2, at least 20 windows per leaf (a leaf rests on more than a class's worth of windows).
Version 4 of the count model boosts the absolute error instead (`loss="lad"`, Friedman's
LAD_TreeBoost): the score is a mean absolute error, and a few days of a class whose phones sit idle
are off by 5-7 people, which least squares chases. The other settings are version 3's. Version 5 lets each fit choose its rounds among a few (bench/heldout.py,
`Spec.rounds`) by a blocked inner cross-validation on its own training months: fitted on count
events, three times as many rows as windows, 60 rounds of shrinkage 0.1 stop short.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from sensor.estimate.count_model import Tree

ROUNDS = 60
SHRINKAGE = 0.1
DEPTH = 2
MIN_LEAF = 20


def fit_tree(
    xs: Sequence[Sequence[float]], rs: Sequence[float], depth: int, min_leaf: int = MIN_LEAF
) -> Tree:
    """The least-squares regression tree of `rs` on `xs` (greedy splits, midpoint thresholds)."""
    n = len(rs)
    if depth == 0 or n < 2 * min_leaf:
        return statistics.fmean(rs) if rs else 0.0
    total = sum(rs)
    best: tuple[float, int, float] | None = None
    for j in range(len(xs[0])):
        order = sorted(range(n), key=lambda i: xs[i][j])
        left = 0.0
        for k in range(1, n - min_leaf + 1):
            left += rs[order[k - 1]]
            if k < min_leaf or xs[order[k - 1]][j] == xs[order[k]][j]:
                continue
            gain = left * left / k + (total - left) ** 2 / (n - k)
            if best is None or gain > best[0]:
                best = (gain, j, (xs[order[k - 1]][j] + xs[order[k]][j]) / 2)
    if best is None:
        return statistics.fmean(rs)
    _, j, threshold = best
    lo = [i for i in range(n) if xs[i][j] <= threshold]
    hi = [i for i in range(n) if xs[i][j] > threshold]
    return (
        j,
        threshold,
        fit_tree([xs[i] for i in lo], [rs[i] for i in lo], depth - 1, min_leaf),
        fit_tree([xs[i] for i in hi], [rs[i] for i in hi], depth - 1, min_leaf),
    )


def predict(tree: Tree, x: Sequence[float]) -> float:
    while not isinstance(tree, float):
        j, threshold, left, right = tree
        tree = left if x[j] <= threshold else right
    return tree


def _scaled(tree: Tree, k: float) -> Tree:
    if isinstance(tree, float):
        return tree * k
    j, threshold, left, right = tree
    return (j, threshold, _scaled(left, k), _scaled(right, k))


def _leaf_paths(tree: Tree, x: Sequence[float], path: str = "") -> str:
    while not isinstance(tree, float):
        j, threshold, left, right = tree
        path += "l" if x[j] <= threshold else "r"
        tree = left if x[j] <= threshold else right
    return path


def _with_leaves(tree: Tree, leaves: dict[str, float], path: str = "") -> Tree:
    if isinstance(tree, float):
        return leaves.get(path, 0.0)
    j, threshold, left, right = tree
    return (j, threshold, _with_leaves(left, leaves, path + "l"), _with_leaves(right, leaves, path + "r"))


def boost(
    xs: Sequence[Sequence[float]],
    ys: Sequence[float],
    start: Sequence[float],
    loss: str = "ls",
    rounds: int = ROUNDS,
) -> tuple[Tree, ...]:
    """Trees (shrinkage applied) that, added to `start`, fit `ys` by least squares (`ls`) or least
    absolute deviation (`lad`: each tree's splits fitted to the residuals' signs, its leaves the
    median residual of their windows, Friedman's LAD_TreeBoost). The first k trees are the k-round
    model (boosting is sequential), so one fit of many rounds gives every shorter one."""
    pred = list(start)
    trees = []
    for _ in range(rounds):
        residuals = [y - p for y, p in zip(ys, pred, strict=True)]
        if loss == "lad":
            shape = fit_tree(xs, [(r > 0) - (r < 0) for r in residuals], DEPTH)
            by: dict[str, list[float]] = {}
            for x, r in zip(xs, residuals, strict=True):
                by.setdefault(_leaf_paths(shape, x), []).append(r)
            raw = _with_leaves(shape, {k: statistics.median(v) for k, v in by.items()})
        else:
            raw = fit_tree(xs, residuals, DEPTH)
        tree = _scaled(raw, SHRINKAGE)
        trees.append(tree)
        pred = [p + predict(tree, x) for p, x in zip(pred, xs, strict=True)]
    return tuple(trees)
