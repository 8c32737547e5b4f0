"""Compare agents at equal budgets of child trainings, or of train seconds, over many seeds.

    python benchmarks/compare_agents.py --env NASTabular-v0 --agents all --seeds 10 --budget 100 \\
        --out runs/compare
    python benchmarks/compare_agents.py --env NASSurrogate-v0 --agents all --seeds 30 \\
        --budget-seconds 5000 --out runs/compare_seconds

Every (agent, seed) run gets a fresh env (its own store: nothing is shared between runs) wrapped in
the budget of ``--budget`` trainings or ``--budget-seconds`` train seconds (each training costs
its recorded seconds on a table, its predicted seconds on the surrogate, its measured seconds on a
real env, as NAS-Bench-201 and NATS-Bench charge queries), and runs the agent of
``agents.registry`` with that seed. Runs are spread over ``--workers`` processes. Every run's
budget use is reported: the complete architectures it evaluated, and the share of its trainings
spent on strict prefixes of other architectures it evaluated (what an episodic agent pays under
``reward="prefix"``). Writes to ``--out``:

- ``results.csv``: one row per agent, seed and training: the architecture trained, its accuracy,
  and the best accuracy so far.
- ``summary.md``: per agent, the final best accuracy as an interquartile mean (IQM) over seeds with
  a 95% bootstrap confidence interval (scipy's BCa bootstrap), and on a table env the regret to the
  table's optimum and the trainings needed to reach the optimum and the top 1%; then where the
  poster's agent (``reinforce``) stands against random search and regularized evolution.
- ``best_so_far.png``: IQM of the best accuracy so far against trainings, with 95% CI bands.

On a table env the optimum of a run is that of the seed column it reads (``seed % seeds``, or the
mean over seeds with ``--set accuracy=mean``).

Beside the best value a run observed, the summary scores the architecture it returns (its best
observed) by its true value, as NAS papers report a search: on a surrogate the noiseless
prediction, on a table the mean over the table's seeds (a real env would need a re-training: not
here). With ``noise=True`` the two differ: the best observed is a seed's draw, often above what the
architecture is worth. ``--seed-offset`` runs seeds that were never used to tune anything.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

TOP_FRACTION = 0.01  # "top 1%" of the table's architectures
BOOTSTRAP_RESAMPLES = 2000
POSTER_AGENT = "reinforce"
STRONG_BASELINES = ("random", "evolution")


@dataclass
class Run:
    agent: str
    seed: int
    trainings: list[int]  # training index of each trained child (1-based)
    archs: list[str]
    accuracies: list[float]
    wall_seconds: float
    steps: int
    train_seconds: float  # what the trainings cost (recorded seconds on a table env)
    optimum: float | None = None  # the table's optimum for this run's seed column
    top_threshold: float | None = None  # accuracy of the top-1% architectures of that column
    seconds: list[float] = field(default_factory=list)  # train seconds spent up to each training
    complete: int = 0  # distinct architectures that ended an episode
    prefix_share: float = 0.0  # share of the trainings spent on strict prefixes of other evaluated archs
    returned: str = ""  # the architecture the search returns: its best observed
    returned_value: float | None = None  # its true value (noiseless, or the mean over seeds); None: unknown
    # the true value of the architecture the search would return after each training (its best
    # observed so far); empty where unknown (a real env)
    pick_values: list[float] = field(default_factory=list)
    best_so_far: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        best, out = 0.0, []
        for a in self.accuracies:
            best = max(best, a)
            out.append(best)
        self.best_so_far = out

    @property
    def final_best(self) -> float:
        return self.best_so_far[-1] if self.best_so_far else 0.0

    def curve(self, budget: int) -> np.ndarray:
        """Best so far after each training 1..budget; a run that stopped early keeps its last value."""
        out = np.zeros(budget)
        for t, b in zip(self.trainings, self.best_so_far, strict=True):
            if 1 <= t <= budget:
                out[t - 1 :] = b
        return out

    def curve_seconds(self, grid: np.ndarray, values: list[float] | None = None) -> np.ndarray:
        """Best so far (or ``values``, one per training) at each train-seconds mark of ``grid``
        (0 before the first training)."""
        out = np.zeros(len(grid))
        for t, b in zip(self.seconds, self.best_so_far if values is None else values, strict=True):
            out[grid >= t - 1e-9] = b
        return out

    def pick_curve(self, budget: int) -> np.ndarray:
        """The true value of the search's pick after each training 1..budget."""
        out = np.zeros(budget)
        for t, v in zip(self.trainings, self.pick_values, strict=True):
            if 1 <= t <= budget:
                out[t - 1 :] = v
        return out

    def trainings_to(self, threshold: float | None) -> float:
        """Trainings until the best so far reaches ``threshold`` (inf when it never does)."""
        if threshold is None:
            return float("nan")
        for t, b in zip(self.trainings, self.best_so_far, strict=True):
            if b >= threshold - 1e-12:
                return float(t)
        return float("inf")


def parse_agent(spec: str) -> tuple[str, dict[str, Any]]:
    """``"reinforce:replay_p=0/replay_k=2"`` -> ("reinforce", {"replay_p": 0, "replay_k": 2}): an agent
    with settings of its config changed (values read as JSON where they parse: 0, 0.5, null, true)."""
    from agents.cli import parse_pairs

    name, _, rest = spec.partition(":")
    return name.strip(), parse_pairs(list(filter(None, rest.split("/"))), f"agent {spec!r}: each setting")


def run_one(
    env_id: str,
    env_kwargs: dict[str, Any],
    agent: str,
    seed: int,
    budget: int | None,
    budget_seconds: float | None = None,
    score_epochs: float | None = None,
) -> Run:
    import torch

    torch.set_num_threads(1)
    import nas_gym  # noqa: F401  (registers the ids)
    from agents.search import Search

    name, overrides = parse_agent(agent)
    search = Search(env_id, name, seed, budget, budget_seconds, env_kwargs, agent_config=overrides)
    outcome = search.start().run()
    wall, evaluator = outcome.wall, outcome.evaluator
    rows = [r for r in outcome.history if r.new_training]
    optimum = threshold = None
    if evaluator.kind == "table":
        optimum, threshold = _table_targets(evaluator, seed)
    use = outcome.history.budget_use()
    best = outcome.history.best()
    returned = "" if best is None else best.arch
    return Run(
        agent,
        seed,
        [r.training for r in rows],
        [r.arch for r in rows],
        [r.accuracy for r in rows],
        wall,
        len(outcome.history),
        float(evaluator.train_seconds),
        optimum,
        threshold,
        [r.seconds for r in rows],
        int(use["complete"]),
        float(use["prefix_share"]),
        returned,
        _true_value(evaluator, returned, score_epochs),
        _pick_values(evaluator, rows, score_epochs),
    )


def _pick_values(evaluator: Any, rows: list[Any], epochs: float | None) -> list[float]:
    """The true value of the best observed architecture after each of ``rows`` (the first seen wins
    a tie, as the search's returned architecture); [] where true values are unknown."""
    out: list[float] = []
    best, value = -1.0, None
    for row in rows:
        if row.accuracy > best:
            best, value = row.accuracy, _true_value(evaluator, row.arch, epochs)
            if value is None:
                return []
        out.append(float(value))  # type: ignore[arg-type]
    return out


def _true_value(evaluator: Any, arch: str, epochs: float | None = None) -> float | None:
    """What ``arch`` is worth beyond one seed's draw: a surrogate's noiseless prediction (at
    ``epochs`` where it answers over fidelities; None: its highest), a table's mean over its seeds;
    None where it would take a training (a real env) or there is no arch."""
    if not arch:
        return None
    if evaluator.kind == "surrogate" and evaluator.takes_epochs:
        fidelities = evaluator.fidelities
        return float(fidelities.at(fidelities.fresh[-1] if epochs is None else epochs).predict(arch)[0])
    if evaluator.kind == "surrogate":
        return float(evaluator.surrogate.predict(arch)[0])
    if evaluator.kind == "table":
        return float(evaluator.table.get(arch).mean_accuracy)
    return None


def _table_targets(evaluator: Any, seed: int) -> tuple[float, float]:
    table = evaluator.table
    column = None if evaluator.mode == "mean" else table.column(seed)
    acc = np.sort(table.accuracies(column))[::-1]
    top = max(1, int(np.ceil(TOP_FRACTION * len(acc))))
    return float(acc[0]), float(acc[top - 1])


# -- statistics ---------------------------------------------------------------------------------


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (Agarwal et al., 2021)."""
    from scipy.stats import trim_mean

    return trim_mean(x, 0.25, axis=axis)


def iqm_ci(values: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """IQM and its 95% bootstrap CI (BCa; percentile when every value is the same)."""
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=float)
    point = float(iqm(x))
    if len(x) < 2 or np.all(x == x[0]):
        return point, point, point
    with warnings.catch_warnings():  # BCa on near-constant data: handled below
        warnings.simplefilter("ignore")
        res = bootstrap(
            (x,), iqm, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95, method="BCa",
            rng=np.random.default_rng(seed), vectorized=True,
        )  # fmt: skip
    lo, hi = res.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa degenerates on near-constant data
        res = bootstrap(
            (x,), iqm, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile",
            rng=np.random.default_rng(seed), vectorized=True,
        )  # fmt: skip
        lo, hi = res.confidence_interval
    return point, float(lo), float(hi)


def curve_bands(curves: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per training index: IQM over runs and a 95% percentile-bootstrap band (runs resampled)."""
    rng = np.random.default_rng(seed)
    n = curves.shape[0]
    idx = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
    boot = iqm(curves[idx], axis=1)  # (resamples, budget)
    return iqm(curves, axis=0), np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """P(X > Y) over all pairs of runs, ties counted half (Mann-Whitney U / (n m))."""
    a, b = np.asarray(x)[:, None], np.asarray(y)[None, :]
    return float(np.mean((a > b) + 0.5 * (a == b)))


# -- outputs ------------------------------------------------------------------------------------


def write_csv(runs: list[Run], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "agent",
                "seed",
                "training",
                "arch",
                "accuracy",
                "best_so_far",
                "train_seconds",
                "pick_true_value",
            ]
        )
        for r in runs:
            seconds = r.seconds or [0.0] * len(r.trainings)
            picks = [f"{v:.6f}" for v in r.pick_values] or [""] * len(r.trainings)
            for t, arch, acc, best, sec, pick in zip(
                r.trainings, r.archs, r.accuracies, r.best_so_far, seconds, picks, strict=True
            ):
                w.writerow([r.agent, r.seed, t, arch, f"{acc:.6f}", f"{best:.6f}", f"{sec:.3f}", pick])


def _fmt_ci(point: float, lo: float, hi: float, scale: float = 100.0, digits: int = 2) -> str:
    return f"{point * scale:.{digits}f} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"


def _median_trainings(values: list[float], budget: int | None) -> str:
    reached = sum(np.isfinite(values))
    if not values or np.isnan(values).all():
        return "n/a"
    med = float(np.median(values))  # inf (never reached) sorts last
    text = f">{budget}" if not np.isfinite(med) else f"{med:.0f}"
    return f"{text} ({reached}/{len(values)} reached)"


def summarize(runs: list[Run], agents: list[str], budget: int | None, header: list[str]) -> str:
    by_agent = {a: [r for r in runs if r.agent == a] for a in agents}
    table_env = all(r.optimum is not None for r in runs)
    lines = [*header, ""]
    reference = "evolution" if "evolution" in by_agent else None
    cols = ["agent", "runs", "final best accuracy, IQM [95% CI] (%)"]
    if reference:
        cols.append(f"P(X > {reference})")
    if table_env:
        cols += [
            "regret to optimum, IQM [95% CI] (pp)",
            "trainings to optimum, median",
            "trainings to top 1%, median",
        ]
    cols += [
        "trainings used, median",
        "train s used, median",
        "complete archs, median",
        "prefix share of trainings, median",
        "wall s per run, median",
    ]
    scored = all(r.returned_value is not None for r in runs)
    if scored:
        cols[3:3] = ["returned architecture's true value, IQM [95% CI] (%)"] + (
            [f"P(X > {reference}), true value"] if reference else []
        )
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    stats: dict[str, tuple[float, float, float]] = {}
    for agent, rs in by_agent.items():
        finals = [r.final_best for r in rs]
        stats[agent] = iqm_ci(finals)
        row = [f"`{agent}`", str(len(rs)), _fmt_ci(*stats[agent])]
        if scored:
            values = [float(r.returned_value) for r in rs]  # type: ignore[arg-type]
            row.append(_fmt_ci(*iqm_ci(values)))
            if reference:
                theirs = [float(r.returned_value) for r in by_agent[reference]]  # type: ignore[arg-type]
                row.append(f"{probability_of_improvement(values, theirs):.2f}")
        if reference:
            row.append(
                f"{probability_of_improvement(finals, [r.final_best for r in by_agent[reference]]):.2f}"
            )
        if table_env:
            regrets = [r.optimum - r.final_best for r in rs]  # type: ignore[operator]
            row.append(_fmt_ci(*iqm_ci(regrets)))
            row.append(_median_trainings([r.trainings_to(r.optimum) for r in rs], budget))
            row.append(_median_trainings([r.trainings_to(r.top_threshold) for r in rs], budget))
        row.append(f"{np.median([r.trainings[-1] if r.trainings else 0 for r in rs]):.0f}")
        row.append(f"{np.median([r.seconds[-1] if r.seconds else 0.0 for r in rs]):.0f}")
        row.append(f"{np.median([r.complete for r in rs]):.0f}")
        row.append(f"{100 * np.median([r.prefix_share for r in rs]):.0f}%")
        row.append(f"{np.median([r.wall_seconds for r in rs]):.1f}")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", verdict(by_agent, stats, budget), ""]
    return "\n".join(lines)


def verdict(
    by_agent: dict[str, list[Run]], stats: dict[str, tuple[float, float, float]], budget: int | None
) -> str:
    """Where the poster's agent stands against the strong baselines, from the CIs of this run: on
    the returned architecture's true value where every run has one, else on the best observed."""
    if POSTER_AGENT not in by_agent:
        return "The poster's agent (`reinforce`) was not in this comparison."
    scored = all(r.returned_value is not None for rs in by_agent.values() for r in rs)

    def score(r: Run) -> float:
        return float(r.returned_value) if scored else r.final_best  # type: ignore[arg-type]

    what = "the returned architecture's true value" if scored else "final best accuracy"
    if scored:
        stats = {a: iqm_ci([score(r) for r in rs]) for a, rs in by_agent.items()}
    ours = stats[POSTER_AGENT]
    finals = [score(r) for r in by_agent[POSTER_AGENT]]
    out = ["## Where the poster's agent stands", ""]
    for other in STRONG_BASELINES:
        if other not in by_agent:
            continue
        theirs = stats[other]
        poi = probability_of_improvement(finals, [score(r) for r in by_agent[other]])
        if ours[1] > theirs[2]:
            word = "ahead of"
        elif ours[2] < theirs[1]:
            word = "behind"
        else:
            word = "not separable from"
        out.append(
            f"- `reinforce` is **{word}** `{other}` on {what}: IQM "
            f"{_fmt_ci(*ours)} vs {_fmt_ci(*theirs)} (%); P(reinforce > {other}) = {poi:.2f} "
            f"over pairs of runs."
        )
    if len(out) == 2:
        return "Neither random search nor regularized evolution was in this comparison."
    ours_runs = by_agent[POSTER_AGENT]
    used = float(np.median([r.trainings[-1] if r.trainings else 0 for r in ours_runs]))
    if budget is not None and used < budget:
        out.append(
            f"- `reinforce` stopped after a median of {used:.0f} of the {budget} trainings: its controller "
            "converged (a run of episodes that trained nothing new) and left the rest of the budget unspent."
        )
    out.append(
        "\n*Ahead of / behind*: the 95% CIs do not overlap; *not separable*: they do, so this many "
        "seeds cannot tell the two apart."
    )
    return "\n".join(out)


def plot(
    runs: list[Run],
    agents: list[str],
    budget: int | None,
    path: Path,
    title: str,
    budget_seconds: float | None = None,
) -> None:
    """Left: the IQM over seeds, with its 95% band, of the true value of each agent's pick (its
    best observed) against train seconds or trainings (the best observed itself where true values
    are unknown); right: each agent's rank by that IQM at every mark. Each agent has its own colour
    and line style, so 15 stay apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if budget_seconds is not None:  # the x axis is train seconds, 200 marks
        x = np.linspace(budget_seconds / 200, budget_seconds, 200)
    else:
        assert budget is not None
        x = np.arange(1, budget + 1)
    picks = all(r.pick_values for r in runs)
    fig, (ax, ranks) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    colours = plt.get_cmap("tab20").colors
    styles = ["-", "--", "-.", ":"]
    floor, middles, shown = 100.0, [], []
    for k, agent in enumerate(agents):
        own = [r for r in runs if r.agent == agent]
        if not own:
            continue
        curves = np.array([_marks(r, x, budget_seconds, picks) for r in own])
        mid, lo, hi = curve_bands(curves)
        style = dict(color=colours[(2 * k) % 20 if k < 10 else (2 * k + 1) % 20], ls=styles[k % 4], lw=1.4)
        ax.plot(x, 100 * mid, label=agent, **style)  # type: ignore[arg-type]
        ax.fill_between(x, 100 * lo, 100 * hi, color=style["color"], alpha=0.12)
        floor = min(floor, 100 * float(mid[min(9, len(x) - 1)]))  # the view starts at the 10th mark
        middles.append(mid)
        shown.append((agent, style))
    order = np.argsort(-np.array(middles), axis=0, kind="stable").argsort(axis=0) + 1  # 1 = best
    for (agent, style), rank in zip(shown, order, strict=True):
        ranks.plot(x, rank, label=agent, **style)  # type: ignore[arg-type]
    optima = [r.optimum for r in runs if r.optimum is not None]
    if optima:
        ax.axhline(100 * float(np.mean(optima)), color="k", ls="--", lw=0.8, label="table optimum")
    xlabel = "train seconds" if budget_seconds is not None else "child trainings"
    what = "true value of the pick" if picks else "best validation accuracy so far"
    ax.set(xlabel=xlabel, ylabel=f"{what} (%), IQM over seeds", title=title)
    ax.legend(loc="lower right", fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    top = max([100 * float(np.max(m)) for m in middles] + [1.0])
    ax.set_ylim(max(0.0, floor - 1.0), min(100.0, top + 0.5))
    ranks.set(xlabel=xlabel, ylabel="rank by IQM (1 = best)", title="ranking over time")
    ranks.set_ylim(len(shown) + 0.5, 0.5)
    ranks.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _marks(run: Run, x: np.ndarray, budget_seconds: float | None, picks: bool) -> np.ndarray:
    if budget_seconds is not None:
        return run.curve_seconds(x, run.pick_values if picks else None)
    return run.pick_curve(len(x)) if picks else run.curve(len(x))


# -- main ---------------------------------------------------------------------------------------


def _split_agents(text: str) -> list[str]:
    """The comma-separated agent specs of ``--agents``; a comma inside brackets belongs to a
    setting's value (``reinforce:curriculum=[[0,4,1],[0.5,15,3]]``)."""
    specs, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            specs.append(current)
            current = ""
        else:
            current += char
    return [spec.strip() for spec in [*specs, current] if spec.strip()]


def _check_score_epochs(p: argparse.ArgumentParser, args: argparse.Namespace, env_kwargs: dict) -> bool:
    """Whether the env answers at several fidelities; sets ``args.score_epochs`` to the fidelity
    returned architectures are scored at (None where the env has one, or trains for real)."""
    import gymnasium as gym

    env = gym.make(args.env, **env_kwargs)
    evaluator = env.unwrapped.evaluator
    env.close()
    over_fidelities = evaluator.kind == "surrogate" and evaluator.takes_epochs
    if args.score_epochs is None:
        args.score_epochs = evaluator.fidelities.fresh[-1] if over_fidelities else None
    elif over_fidelities:
        try:
            evaluator.check_epochs(args.score_epochs)
        except ValueError as e:
            p.error(f"--score-epochs: {e}")
    elif args.score_epochs != evaluator.epochs or evaluator.kind == "train":
        p.error(
            f"--score-epochs: {args.env} scores returned architectures at the epochs it answers "
            f"({evaluator.epochs:g}); a surrogate over fidelities (NASSurrogate-v2) scores at any"
        )
    return bool(evaluator.takes_epochs)


def main(argv: Sequence[str] | None = None) -> int:
    from agents.cli import parse_pairs
    from agents.registry import AGENTS, check_config

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="NASTabular-v0")
    p.add_argument(
        "--agents",
        default="all",
        help=f"comma-separated, or all: {','.join(AGENTS)}; NAME:KEY=VALUE/KEY=VALUE changes settings "
        "of the agent's config (an ablation, e.g. reinforce:replay_p=0)",
    )
    p.add_argument("--seeds", type=int, default=10, help="runs per agent, seeds OFFSET..OFFSET+N-1")
    p.add_argument("--seed-offset", type=int, default=0, help="the first seed (fresh seeds: one never used)")
    p.add_argument("--budget", type=int, default=None, help="child trainings per run (default 100)")
    p.add_argument(
        "--budget-seconds",
        type=float,
        default=None,
        help="train seconds per run (recorded or predicted), alone or beside --budget",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="runs at once (processes)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="env kwarg, e.g. accuracy=mean")
    p.add_argument(
        "--score-epochs",
        type=float,
        default=None,
        help="the fidelity the returned architecture is scored at (a surrogate over fidelities; "
        "default: the highest it knows)",
    )
    args = p.parse_args(argv)
    env_kwargs = parse_pairs(args.set)
    import gymnasium as gym

    import nas_gym  # noqa: F401

    if args.env not in gym.registry:
        p.error(f"unknown env id {args.env!r}")
    takes_epochs = _check_score_epochs(p, args, env_kwargs)
    if args.agents == "all":  # every agent the env can answer: the multi-fidelity ones need several epochs
        agents = [n for n, a in AGENTS.items() if not a.fidelity or takes_epochs]
    else:
        agents = _split_agents(args.agents)
    for spec in agents:
        try:
            check_config(*parse_agent(spec))
        except ValueError as e:
            p.error(str(e))
    if len(set(agents)) != len(agents):
        p.error("an agent is listed twice")
    if args.budget is None and args.budget_seconds is None:
        args.budget = 100
    if args.seeds < 1 or (args.budget is not None and args.budget < 1) or args.workers < 1:
        p.error("--seeds, --budget and --workers must be >= 1")
    if args.budget_seconds is not None and not args.budget_seconds > 0:
        p.error("--budget-seconds must be > 0")
    args.out.mkdir(parents=True, exist_ok=True)

    jobs = [
        (args.env, env_kwargs, a, s, args.budget, args.budget_seconds, args.score_epochs)
        for a in agents
        for s in range(args.seed_offset, args.seed_offset + args.seeds)
    ]
    if args.seeds < 10:
        print(f"warning: {args.seeds} seeds per agent: too few to rank agents (intervals are wide below 10)")
    start = time.perf_counter()
    runs: list[Run] = []
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(run_one, *job) for job in jobs]
        for i, fut in enumerate(futures, 1):
            run = fut.result()
            runs.append(run)
            print(
                f"[{i}/{len(jobs)}] {run.agent} seed {run.seed}: best {run.final_best:.2%} after "
                f"{run.trainings[-1] if run.trainings else 0} trainings, {run.seconds[-1] if run.seconds else 0:.0f} "
                f"train s ({run.wall_seconds:.1f} s)",
                flush=True,
            )
    wall = time.perf_counter() - start

    write_csv(runs, args.out / "results.csv")
    budget_text = " and ".join(
        ([f"{args.budget} trainings"] if args.budget is not None else [])
        + ([f"{args.budget_seconds:g} train seconds"] if args.budget_seconds is not None else [])
    )
    header = [
        f"# Agents compared on `{args.env}`",
        "",
        f"{len(agents)} agents x {args.seeds} seeds ({args.seed_offset}..{args.seed_offset + args.seeds - 1}) "
        f"x budget {budget_text}; "
        f"env kwargs {env_kwargs or 'as registered'}; "
        + (f"returned architectures scored at {args.score_epochs:g} epochs; " if args.score_epochs else "")
        + f"{time.strftime('%Y-%m-%d')}; "
        f"wall time {wall:.0f} s with {args.workers} worker processes.",
        "",
        "Command: `python benchmarks/compare_agents.py " + " ".join(argv or sys.argv[1:]) + "`",
    ]
    summary = summarize(runs, agents, args.budget, header)
    (args.out / "summary.md").write_text(summary, encoding="utf-8")
    plot(
        runs,
        agents,
        args.budget,
        args.out / "best_so_far.png",
        f"{args.env}, {args.seeds} seeds",
        args.budget_seconds,
    )
    print(summary)
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'summary.md'}, {args.out / 'best_so_far.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
