"""Fitting the surrogate (:mod:`nas_gym.surrogate`) to trained samples (:mod:`nas_gym.build.samples`).

Needs torch, and LightGBM for the trees; the fitted model is plain arrays that the surrogate env
reads with numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas_gym.search_space import Architecture
from nas_gym.surrogate import FORMAT, MODELS, Surrogate, _Trees, features

__all__ = [
    "TREE_PARAMS",
    "export_member",
    "first_two_seeds",
    "fit_surrogate",
    "normal_scores",
    "seed_pairs",
    "trees_from_lightgbm",
]


def fit_surrogate(
    samples: Any,
    members: int = 5,
    hidden: int = 64,
    epochs: int = 400,
    seed: int = 0,
    holdout: set[str] | None = None,
    model: str = "mlp",
    blend: float = 0.5,
) -> tuple[Surrogate, dict[str, np.ndarray]]:
    """Fit the model to a :class:`~nas_gym.build.samples.SampleSet` (mean over seeds per architecture,
    failed trainings left out), leaving out the architectures in ``holdout``. ``model``: one of
    :data:`MODELS` (``blend``: the trees' weight in ``"mlp+trees"``). Needs torch, and LightGBM
    for trees (fitting only: a fitted surrogate predicts with numpy)."""
    import torch

    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"blend is the trees' weight, in [0, 1]; got {blend!r}")

    from nas_gym.training.datasets import DATASETS

    info = DATASETS[samples.dataset]
    in_channels, num_classes = info.channels, info.num_classes
    by_arch = samples.by_arch()
    names = sorted(a for a, rows in by_arch.items() if (holdout is None or a not in holdout)
                   and all(r.status == "ok" for r in rows))  # fmt: skip
    x = np.stack([features(Architecture.parse(a), samples.image_size) for a in names]).astype(np.float64)
    acc = np.array([np.mean([r.accuracy for r in by_arch[a]]) for a in names])
    secs = np.array([np.log(max(1e-3, np.mean([r.train_seconds for r in by_arch[a]]))) for a in names])
    scores, accuracy_p, accuracy_q = normal_scores(acc)
    lo, hi = float(accuracy_q[0]), float(accuracy_q[-1])
    y = np.stack([scores, secs], axis=1)
    x_mean, x_std = x.mean(0), x.std(0) + 1e-6
    y_mean, y_std = y.mean(0), y.std(0) + 1e-6
    xt = torch.tensor((x - x_mean) / x_std, dtype=torch.float64)
    yt = torch.tensor((y - y_mean) / y_std, dtype=torch.float64)
    arrays: dict[str, np.ndarray] = {
        "x_mean": x_mean, "x_std": x_std, "y_mean": y_mean, "y_std": y_std,
        "accuracy_p": accuracy_p, "accuracy_q": accuracy_q,
    }  # fmt: skip
    _fit_model(arrays, model, x, xt, yt, members, hidden, epochs, seed)
    pairs = seed_pairs(by_arch)
    seed_std = float(np.sqrt(np.mean(pairs[:, 1] ** 2) / 2)) if len(pairs) else 0.0
    arrays["noise_accuracy"], arrays["noise_std"] = _noise_curve(pairs)
    meta = {
        "format": FORMAT,
        "accuracy_bounds": [lo, hi],
        "accuracy_target": "normal score of the rank",
        "model": model,
        **({"blend": blend} if model == "mlp+trees" else {}),
        **({"trees": TREE_PARAMS} if "trees" in model else {}),
        "members": members,
        "layers": 3,
        "hidden": hidden,
        "epochs": epochs,
        "image_size": samples.image_size,
        "dataset": samples.dataset,
        "env_id": samples.env_id,
        "budget": samples.config,  # the children's configuration (the first name of the field)
        "in_channels": in_channels,
        "num_classes": num_classes,
        "width": float(samples.config.get("width", 1.0)),
        "fitted_on": len(names),
        "seed_std": seed_std,  # pooled over every pair; noise=True draws from the curve by accuracy
        "seed_pairs": len(pairs),
        "samples_build": samples.build,
    }
    return Surrogate(arrays, meta), arrays


def _fit_model(
    arrays: dict[str, np.ndarray], model: str, x: np.ndarray, xt: Any, yt: Any,
    members: int, hidden: int, epochs: int, seed: int,
) -> None:  # fmt: skip
    """Fit ``model``'s MLP members and/or trees to the standardised targets; their arrays into ``arrays``."""
    import torch

    threads = torch.get_num_threads()
    # batches of 128 rows: one thread is many times faster than a pool contending for shared cores
    torch.set_num_threads(1)
    try:
        if "mlp" in model:
            _fit_members(arrays, xt, yt, members, hidden, epochs, seed)
        if "trees" in model:
            for h in range(2):  # on the raw features (a split does not care for scale)
                arrays.update(_fit_trees(x, yt[:, h].numpy(), seed).to_arrays(f"t{h}"))
    finally:
        torch.set_num_threads(threads)


def normal_scores(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What an accuracy head is fitted to: each accuracy's normal score (the standard normal
    quantile of its rank, ties averaged), and the map back, the accuracy ``q`` at each probability
    ``p``: (0, lowest - 1 pp), each distinct measured one at its (average rank - 0.5) / n, (1,
    highest + 1 pp). Strictly increasing, so different outputs never tie; a prediction never
    leaves the measured range widened by 1 pp, and a rank error costs the same at any level."""
    import torch

    n = len(acc)
    lo, hi = max(0.0, float(acc.min()) - 0.01), min(1.0, float(acc.max()) + 0.01)
    values, inverse, counts = np.unique(acc, return_inverse=True, return_counts=True)
    mid = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based ranks, ties averaged
    scores = torch.special.ndtri(torch.tensor((mid[inverse] - 0.5) / n, dtype=torch.float64)).numpy()
    p = np.concatenate([[0.0], (mid - 0.5) / n, [1.0]])
    return scores, p, np.concatenate([[lo], values, [hi]])


# LightGBM's settings for the trees: shallow trees (depth 8 at most, so a prediction walks 8 steps),
# a slow learning rate, row and feature subsampling; chosen by the grouped cross-validation of
# benchmarks/surrogate.py (see benchmarks/RESULTS.md), one thread (deterministic)
TREE_PARAMS: dict[str, Any] = {
    "objective": "regression", "num_boost_round": 800, "learning_rate": 0.03, "num_leaves": 31,
    "max_depth": 8, "min_data_in_leaf": 10, "bagging_fraction": 0.8, "bagging_freq": 1,
    "feature_fraction": 0.8, "lambda_l2": 1.0,
}  # fmt: skip


def seed_pairs(by_arch: dict[str, list[Any]]) -> np.ndarray:
    """(mean accuracy, first minus second) of each architecture trained with two distinct seeds
    and no failure (:func:`first_two_seeds`). Shape (pairs, 2)."""
    out = []
    for rows in by_arch.values():
        two = first_two_seeds(rows)
        if two is not None:
            (_, a), (_, b) = two
            out.append(((a + b) / 2, a - b))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def first_two_seeds(rows: list[Any]) -> tuple[tuple[int, float], tuple[int, float]] | None:
    """The (seed, accuracy) of the first training under each of the two lowest seeds of one
    architecture's rows, or None if it has fewer than two seeds or a failed training. A repeated
    training of one seed says nothing about seeds, so it is left out."""
    if any(r.status != "ok" for r in rows):
        return None
    first: dict[int, float] = {}
    for r in rows:
        first.setdefault(int(r.seed), float(r.accuracy))
    if len(first) < 2:
        return None
    a, b = sorted(first)[:2]
    return (a, first[a]), (b, first[b])


def _noise_curve(pairs: np.ndarray, per_bin: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The seed spread as a function of accuracy: the pairs sorted by their mean accuracy and cut
    into bins of about ``per_bin`` (at least one bin); per bin, its median accuracy and the
    standard deviation of one seed, sqrt(mean(diff^2) / 2) (the difference of two independent
    seeds has twice one seed's variance). Between bins it is read by linear interpolation, flat
    beyond the ends."""
    if len(pairs) == 0:
        return np.zeros(1), np.zeros(1)
    ordered = pairs[np.argsort(pairs[:, 0], kind="stable")]
    bins = np.array_split(ordered, max(1, len(ordered) // per_bin))
    centres = np.array([np.median(b[:, 0]) for b in bins])
    spread = np.array([np.sqrt(np.mean(b[:, 1] ** 2) / 2) for b in bins])
    return centres, spread


def _fit_trees(x: np.ndarray, y: np.ndarray, seed: int) -> _Trees:
    """Boosted trees from features ``x`` to one target ``y``, exported to arrays."""
    try:
        import lightgbm
    except ImportError:
        raise ImportError("fitting a surrogate with trees needs LightGBM: pip install lightgbm") from None
    params = {k: v for k, v in TREE_PARAMS.items() if k != "num_boost_round"}
    booster = lightgbm.train(
        {**params, "seed": seed, "num_threads": 1, "deterministic": True, "verbose": -1},
        lightgbm.Dataset(x, y),
        num_boost_round=TREE_PARAMS["num_boost_round"],
    )
    return trees_from_lightgbm(booster)


def _fit_members(
    arrays: dict[str, np.ndarray], xt: Any, yt: Any, members: int, hidden: int, epochs: int, seed: int
) -> None:
    """Fit the ensemble's members to (features, targets) and put their weights in ``arrays``."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for m in range(members):
        torch.manual_seed(seed * 1000 + m)
        net = torch.nn.Sequential(
            torch.nn.Linear(xt.shape[1], hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, 2),
        ).double()  # fmt: skip
        optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
        # each member sees a bootstrap resample: the ensemble's spread is then meaningful
        rows = torch.randint(0, len(xt), (len(xt),), generator=generator)
        for _ in range(epochs):
            for batch in torch.randperm(len(rows), generator=generator).split(128):
                idx = rows[batch]
                loss = torch.nn.functional.mse_loss(net(xt[idx]), yt[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        export_member(arrays, m, net)


def export_member(arrays: dict[str, np.ndarray], m: int, net: Any) -> None:
    """Member ``m``'s linear layers (a ``torch.nn.Sequential``) as arrays ``m{m}_w{i}`` (in x out)
    and ``m{m}_b{i}``: what the surrogate files hold and numpy multiplies."""
    import torch

    linears = [module for module in net if isinstance(module, torch.nn.Linear)]
    for i, linear in enumerate(linears):
        arrays[f"m{m}_w{i}"] = linear.weight.detach().numpy().T.copy()
        arrays[f"m{m}_b{i}"] = linear.bias.detach().numpy().copy()


def trees_from_lightgbm(booster: Any) -> _Trees:
    """A LightGBM booster's trees (numeric splits, no missing values: the features have none)."""
    trees = []
    for info in booster.dump_model()["tree_info"]:
        nodes: list[list[float]] = []  # feature, threshold, left, right, value

        def add(node: dict[str, Any], nodes: list[list[float]] = nodes) -> int:
            index = len(nodes)
            nodes.append([0, np.inf, index, index, 0.0])
            if "leaf_value" in node or "split_feature" not in node:
                nodes[index][4] = float(node.get("leaf_value", 0.0))
                return index
            if node.get("decision_type", "<=") != "<=":
                raise ValueError(f"a tree split of type {node['decision_type']!r} cannot be exported")
            left, right = add(node["left_child"]), add(node["right_child"])
            nodes[index] = [node["split_feature"], float(node["threshold"]), left, right, 0.0]
            return index

        add(info["tree_structure"])
        trees.append(nodes)
    width = max(len(t) for t in trees)
    table = np.zeros((len(trees), width, 5))
    for t, nodes in enumerate(trees):
        table[t, :, 1] = np.inf
        table[t, :, 2] = table[t, :, 3] = np.arange(width)  # padding: leaves of value 0
        table[t, : len(nodes)] = nodes
    return _Trees(*(table[:, :, i] for i in range(5)))
