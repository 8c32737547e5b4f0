"""Fitting the surrogate over fidelities (:class:`nas_gym.surrogate.FidelitySurrogate`,
``NASSurrogate-v2``) to real trainings at several epochs.

The data: one :class:`~nas_gym.build.samples.SampleSet` per fidelity (the 3-epoch samples of v1,
the 1- and 9-epoch trainings of ``benchmarks/data/fidelity``), the longest one's rows with their
curves. Every architecture is a row of targets, one per head, missing where it was not trained
at that fidelity; the heads share the ensemble's hidden layers and each is fitted on the rows
that have it (a masked loss, each head weighted alike however many rows it has). Needs torch;
the fitted model is plain arrays read with numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas_gym.build.surrogate import _noise_curve, export_member, first_two_seeds, normal_scores, seed_pairs
from nas_gym.search_space import Architecture
from nas_gym.surrogate import FIDELITY_FORMAT, FidelitySurrogate, features

__all__ = ["FidelityData", "fidelity_data", "fit_fidelity_surrogate"]


class FidelityData:
    """Targets by architecture: ``names`` (sorted), ``y`` (architectures x heads, NaN where not
    measured), the heads' names, each accuracy head's seed pairs (mean, first minus second) and
    where a head without pairs took its noise from."""

    def __init__(
        self,
        names: list[str],
        y: np.ndarray,
        heads: list[str],
        pairs: dict[str, np.ndarray],
        noise_from: dict[str, str],
        fresh: tuple[float, ...],
        curve_of: int,
    ) -> None:
        self.names, self.y, self.heads, self.pairs = names, y, heads, pairs
        self.noise_from, self.fresh, self.curve_of = noise_from, fresh, curve_of

    def column(self, head: str) -> np.ndarray:
        return self.y[:, self.heads.index(head)]


def fidelity_data(sets: dict[float, Any]) -> FidelityData:
    """:class:`FidelityData` of ``sets`` (epochs -> SampleSet; the longest carries the curves).
    An architecture with a failed training at a fidelity has no target there."""
    fresh = tuple(sorted(float(e) for e in sets))
    curve_of = int(fresh[-1])
    heads = [f"acc_e{e:g}" for e in fresh] + [f"curve_{k}" for k in range(1, curve_of)]
    heads += [f"sec_e{e:g}" for e in fresh]
    by_fidelity = {e: sets[e].by_arch() for e in fresh}
    names = sorted({a for by_arch in by_fidelity.values() for a in by_arch})
    index = {a: i for i, a in enumerate(names)}
    y = np.full((len(names), len(heads)), np.nan)
    pairs: dict[str, np.ndarray] = {}
    for e, by_arch in by_fidelity.items():
        for a, rows in by_arch.items():
            if all(r.status == "ok" for r in rows):
                y[index[a], heads.index(f"acc_e{e:g}")] = np.mean([r.accuracy for r in rows])
                seconds = np.mean([r.train_seconds for r in rows])
                y[index[a], heads.index(f"sec_e{e:g}")] = np.log(max(1e-3, seconds))
        pairs[f"acc_e{e:g}"] = seed_pairs(by_arch)
    longest = by_fidelity[fresh[-1]]
    for k in range(1, curve_of):
        head = f"curve_{k}"
        for a, rows in longest.items():
            found = [_curve_point(r, k) for r in rows if r.status == "ok"]
            points = [p for p in found if p is not None]
            if points and all(r.status == "ok" for r in rows):
                y[index[a], heads.index(head)] = np.mean(points)
        pairs[head] = _curve_pairs(longest, k)
    noise_from = {}
    for e in fresh:  # no two-seed trainings at a fidelity: the spread after that epoch of a curve
        head, source = f"acc_e{e:g}", f"curve_{min(curve_of - 1, max(1, round(e)))}"
        if len(pairs[head]) == 0 and len(pairs[source]):
            pairs[head], noise_from[head] = pairs[source], source
    return FidelityData(names, y, heads, pairs, noise_from, fresh, curve_of)


def _curve_point(row: Any, k: int) -> float | None:
    for point in getattr(row, "curve", None) or ():
        if int(round(point[0])) == k:
            return float(point[1])
    return None


def _curve_pairs(by_arch: dict[str, list[Any]], k: int) -> np.ndarray:
    """(mean, first minus second) of the accuracy after epoch k of two seeds' trainings."""
    out = []
    for rows in by_arch.values():
        two = first_two_seeds(rows)
        if two is None:
            continue
        firsts: dict[int, Any] = {}
        for r in rows:
            firsts.setdefault(int(r.seed), r)
        a, b = (_curve_point(firsts[seed], k) for seed, _ in two)
        if a is not None and b is not None:
            out.append(((a + b) / 2, a - b))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def fit_fidelity_surrogate(
    sets: dict[float, Any],
    members: int = 5,
    hidden: int = 64,
    epochs: int = 100,
    seed: int = 0,
    holdout: set[str] | None = None,
    default_epochs: float = 3.0,
) -> tuple[FidelitySurrogate, dict[str, np.ndarray]]:
    """Fit a :class:`FidelitySurrogate` to ``sets`` (epochs -> SampleSet), leaving out the
    architectures in ``holdout``."""
    import torch

    _check_one_configuration(sets)
    data = fidelity_data(sets)
    keep = [i for i, a in enumerate(data.names) if holdout is None or a not in holdout]
    names = [data.names[i] for i in keep]
    reference = sets[data.fresh[len(data.fresh) // 2]]
    image_size = int(reference.image_size)
    x = np.stack([features(Architecture.parse(a), image_size) for a in names]).astype(np.float64)
    y = data.y[keep].copy()
    arrays = _accuracy_maps(data, y)
    x_mean, x_std = x.mean(0), x.std(0) + 1e-6
    y_mean, y_std = np.nanmean(y, axis=0), np.nanstd(y, axis=0) + 1e-6
    arrays.update(x_mean=x_mean, x_std=x_std, y_mean=y_mean, y_std=y_std)
    xt = torch.tensor((x - x_mean) / x_std, dtype=torch.float64)
    yt = torch.tensor((y - y_mean) / y_std, dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: one thread is faster than a pool on shared cores
    try:
        _fit_masked_members(arrays, xt, yt, members, hidden, epochs, seed)
    finally:
        torch.set_num_threads(threads)
    settings = {"members": members, "layers": 3, "hidden": hidden, "epochs": epochs}
    meta = _meta(sets, data, y, arrays, settings, default_epochs)
    return FidelitySurrogate(arrays, meta), arrays


def _check_one_configuration(sets: dict[float, Any]) -> None:
    configs = {e: {k: v for k, v in sets[e].config.items() if k != "epochs"} for e in sets}
    if (
        any(c != next(iter(configs.values())) for c in configs.values())
        or len({(sets[e].dataset, sets[e].image_size) for e in sets}) != 1
    ):
        raise ValueError("the fidelities' samples must share the data and the configuration but epochs")


def _accuracy_maps(data: FidelityData, y: np.ndarray) -> dict[str, np.ndarray]:
    """Each accuracy head's column of ``y`` replaced by its normal scores (in place); their maps
    back to accuracies and their seed spreads by accuracy, as arrays of the file."""
    arrays: dict[str, np.ndarray] = {}
    for h, head in enumerate(data.heads):
        present = ~np.isnan(y[:, h])
        if not present.any():
            raise ValueError(f"no training measures {head}: every fidelity needs data")
        if head.startswith("sec_"):
            continue
        y[present, h], arrays[f"p_{head}"], arrays[f"q_{head}"] = normal_scores(y[present, h])
        arrays[f"noise_accuracy_{head}"], arrays[f"noise_std_{head}"] = _noise_curve(data.pairs[head])
    return arrays


def _meta(
    sets: dict[float, Any],
    data: FidelityData,
    y: np.ndarray,
    arrays: dict[str, np.ndarray],
    settings: dict[str, int],
    default_epochs: float,
) -> dict[str, Any]:
    """What the file says of itself: its heads, fidelities, configuration, data and fit."""
    from nas_gym.training.datasets import DATASETS

    reference = sets[data.fresh[len(data.fresh) // 2]]
    info = DATASETS[reference.dataset]
    accuracy_heads = [h for h in data.heads if not h.startswith("sec_")]
    return {
        "format": FIDELITY_FORMAT,
        "model": "mlp",
        "heads": data.heads,
        "fresh": list(data.fresh),
        "curve_of": data.curve_of,
        "default_epochs": float(default_epochs),
        **settings,
        "image_size": int(reference.image_size),
        "dataset": reference.dataset,
        "env_id": reference.env_id,
        # the children's configuration at the default fidelity (a request's epochs replace it)
        "budget": {**reference.config, "epochs": float(default_epochs)},
        "accuracy_bounds": [
            min(float(arrays[f"q_{h}"][0]) for h in accuracy_heads),
            max(float(arrays[f"q_{h}"][-1]) for h in accuracy_heads),
        ],
        "in_channels": info.channels,
        "num_classes": info.num_classes,
        "width": float(reference.config.get("width", 1.0)),
        "fitted_on": len(y),
        "rows_per_head": {head: int((~np.isnan(y[:, h])).sum()) for h, head in enumerate(data.heads)},
        "seed_pairs": {h: len(p) for h, p in data.pairs.items()},
        "noise_from": data.noise_from,
        "interpolation": "accuracy linear in log epochs, seconds linear in epochs, between fresh fidelities",
        "samples_builds": {f"{e:g}": sets[e].build for e in data.fresh},
        # the rows of each samples file read: a build appends to its exports, so these first rows
        # are the ones this fit saw (benchmarks/surrogate_v2.py --score reads the rest)
        "samples_rows": {f"{e:g}": len(sets[e].samples) for e in data.fresh},
    }


def _fit_masked_members(
    arrays: dict[str, np.ndarray], xt: Any, yt: Any, members: int, hidden: int, epochs: int, seed: int
) -> None:
    """Fit the ensemble's members to every head at once; a head's loss is the mean squared error
    over the rows of the batch that measure it, and the heads' losses are summed."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    present = ~torch.isnan(yt)
    target = torch.nan_to_num(yt)
    for m in range(members):
        torch.manual_seed(seed * 1000 + m)
        net = torch.nn.Sequential(
            torch.nn.Linear(xt.shape[1], hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, yt.shape[1]),
        ).double()  # fmt: skip
        optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
        rows = torch.randint(0, len(xt), (len(xt),), generator=generator)  # a bootstrap resample
        for _ in range(epochs):
            for batch in torch.randperm(len(rows), generator=generator).split(256):
                idx = rows[batch]
                mask = present[idx].double()
                error = (net(xt[idx]) - target[idx]) ** 2 * mask
                loss = (error.sum(0) / mask.sum(0).clamp(min=1.0)).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        export_member(arrays, m, net)
