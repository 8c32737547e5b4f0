"""The ``nas-gym`` command line.

It sits at the end of the data flow (it drives envs and agents), which is why it lives in
``agents`` and not in ``nas_gym``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from agents.search import Outcome, Running

__all__ = ["main"]


class CliError(ValueError):
    """A user error: printed as one line, exit status 2."""


def _check_trains_children(env_id: str, what: str) -> None:
    """``what`` (a table, samples) is made of real trainings: refuse an env that reads or predicts
    its rewards, naming the envs that train."""
    import gymnasium as gym

    import nas_gym
    from nas_gym.registration import env_kind

    if env_id in gym.registry and env_kind(env_id) != "train":
        training = ", ".join(i for i in nas_gym.ENV_IDS if env_kind(i) == "train")
        raise CliError(f"{what} is trained on an env that trains children ({training}), not {env_id}")


def _folder(text: str) -> Path:
    """A folder given on the command line; an empty one (which would mean the current folder) is
    refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty folder name: give a folder (e.g. runs/my-search)")
    return Path(text)


def _make_env(env_id: str, overrides: dict[str, Any]):
    from agents.search import env_kwargs, make_env

    return make_env(env_id, env_kwargs(env_id, overrides))


_PYTHON_CONSTANTS: dict[str, Any] = {"True": True, "False": False, "None": None}


def parse_pairs(pairs: list[str] | None, what: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` pairs (``--set`` env kwargs, an agent's settings); VALUE is read as JSON when it
    parses (numbers, null, true), or Python's spelling of a constant (True, False, None), else kept
    as text."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise CliError(f"{what} wants KEY=VALUE, got {pair!r}")
        if text in _PYTHON_CONSTANTS:
            out[key] = _PYTHON_CONSTANTS[text]
            continue
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def _overrides(pairs: list[str] | None, **options: Any) -> dict[str, Any]:
    """Env kwargs from ``--set`` pairs and the dedicated options (``--epochs``...) that were given:
    an option left out (None) must not hide the same key given with ``--set``."""
    return {**parse_pairs(pairs), **{k: v for k, v in options.items() if v is not None}}


def _evaluate_run(args: argparse.Namespace) -> dict[str, Any]:
    """``--run DIR``: the run's best architecture, env and seed into ``args``; its final training's kwargs."""
    from agents.common.runs import FINAL_EPOCHS_FACTOR, RunSpec, best_of_run

    base: dict[str, Any] = {}
    args.text, run_env, run_seed = best_of_run(args.run)
    if args.env is not None and args.env != run_env:
        raise CliError(f"{args.run} is a search of {run_env}, not {args.env}")
    args.env = run_env
    args.seed = run_seed if args.seed is None else args.seed
    spec = RunSpec.load(args.run)
    if spec is not None:  # the run's own configuration, trained longer: the final training
        base = dict(spec.env_kwargs)
        base["epochs"] = FINAL_EPOCHS_FACTOR * float(base.get("epochs", 1.0))
        # from scratch, whatever the search did: that is what the best architecture is judged on
        base.pop("inherit", None)
        base.pop("inherit_epochs", None)
    if args.store is None:
        args.store = str(args.run / "final.sqlite")
    return base


def cmd_evaluate(args: argparse.Namespace) -> None:
    from rich.console import Console

    from nas_gym.search_space import Architecture, ArchitectureSyntaxError

    base = _evaluate_run(args) if args.run is not None else {}
    if args.text is None:
        raise CliError("give an architecture TEXT or --run DIR")
    env_id = args.env or "NASFashionMini-v0"
    seed = 0 if args.seed is None else args.seed
    try:
        arch = Architecture.parse(args.text)
    except ArchitectureSyntaxError as e:
        raise CliError(str(e)) from e
    if len(arch) == 0:
        raise CliError("the architecture is empty: give at least one layer, e.g. C32k3")
    overrides = base | _overrides(
        args.set, epochs=args.epochs, device=args.device, data_dir=args.data_dir, store=args.store
    )
    env = _make_env(env_id, overrides)
    evaluator = env.unwrapped.evaluator
    if not arch.fits(evaluator.image_size):
        raise CliError(f"{arch} shrinks the {evaluator.image_size}x{evaluator.image_size} input below 1x1")
    if evaluator.kind != "train":  # a table or a surrogate: what it answers, no training
        _print_answer(env, arch, seed, env_id)
        return
    console = Console()
    console.print(f"training [bold]{arch}[/] on {env_id} ({evaluator.epochs:g} epochs, seed {seed}) ...")
    try:
        result = evaluator.final_evaluate(arch, seed)
    except ValueError as e:  # data that cannot be found or read, a store that cannot be written
        raise CliError(str(e)) from e
    console.print(_training_table(evaluator, arch, seed, result))


def _training_table(evaluator: Any, arch: Any, seed: int, result: Any) -> Any:
    """``nas-gym evaluate`` after a final training: its result as a table."""
    from rich.table import Table

    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("validation accuracy", f"{result.accuracy:.4f}")
    test = "-" if result.test_accuracy is None else f"{result.test_accuracy:.4f}"
    table.add_row("test accuracy", test)
    table.add_row("parameters", f"{result.num_params:,}")
    seconds = evaluator.recorded_seconds(arch, seed)
    table.add_row("train seconds", f"{seconds:.1f}" + (" (from the store)" if result.cached else ""))
    table.add_row("status", result.status)
    table.add_row("device", evaluator.setup.device_type)
    return table


def _print_answer(env: Any, arch: Any, seed: int, env_id: str) -> None:
    """``nas-gym evaluate`` on an env that answers from a table or a surrogate: its answer."""
    from rich.console import Console
    from rich.table import Table

    evaluator = env.unwrapped.evaluator
    vocabulary = env.unwrapped.vocabulary
    if not vocabulary.is_valid(arch, evaluator.image_size):
        try:
            vocabulary.validate(arch, evaluator.image_size)
        except ValueError as e:
            raise CliError(f"{arch} is not in {env_id}'s space: {e}") from e
    kind = evaluator.kind  # "table" or "surrogate"
    if kind == "table" and str(arch) not in evaluator.table.entries:
        raise CliError(f"{arch} is not in the table")
    result = evaluator.evaluate(arch, seed)
    table = Table(
        title=f"{arch} on {env_id} ({'read from the table' if kind == 'table' else 'predicted'}, seed {seed})"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("validation accuracy", f"{result.accuracy:.4f}")
    table.add_row("test accuracy", "- (no test set behind a " + kind + ")")
    table.add_row("parameters", f"{result.num_params:,}")
    table.add_row(
        "train seconds",
        f"{evaluator.recorded_seconds(arch, seed):.1f} ({'recorded' if kind == 'table' else 'predicted'})",
    )
    Console().print(table)
    env.close()


def cmd_export(args: argparse.Namespace) -> None:
    from rich.console import Console

    from agents.export import export_run

    if args.epochs is not None and not args.epochs > 0:
        raise CliError(f"--epochs must be a positive number, got {args.epochs}")
    console = Console()
    console.print(f"training the best architecture of {args.run} for export ...")
    card = export_run(args.run, args.out, args.epochs, args.seed, command=args.command_line)
    console.print(
        f"{card['architecture']}: test accuracy {card['test_accuracy']:.4f} on {card['test_images']} images; "
        f"wrote {args.out} ({card['bytes'] / 1024:.0f} KiB) and {args.out.with_suffix('.json')}"
    )


DEFAULT_BUDGET = 80  # trainings; a few minutes with REINFORCE on NASFashionMini-v0 on 2 cores


def _search_data(args: argparse.Namespace) -> str | None:
    """``--data DIR``: the env becomes NASImages-v0 over that folder (its absolute path, so the run
    folder resumes from anywhere); returns the folder, None without ``--data``."""
    data = None
    if args.data is not None:
        from nas_gym.registration import IMAGES_ID

        if args.env not in (None, IMAGES_ID):
            raise CliError(f"--data searches {IMAGES_ID}; leave out --env {args.env}")
        args.env, data = IMAGES_ID, str(Path(args.data).expanduser().resolve())
    args.env = args.env or "NASFashionMini-v0"
    return data


def cmd_search(args: argparse.Namespace) -> None:
    from rich.console import Console

    from agents.search import Search

    if args.budget is None and args.budget_seconds is None:
        args.budget = DEFAULT_BUDGET
    data = _search_data(args)
    search = Search(
        args.env,
        args.agent,
        args.seed,
        budget=args.budget,
        budget_seconds=args.budget_seconds,
        overrides=_overrides(
            args.set, device=args.device, data_dir=args.data_dir, epochs=args.epochs, data=data
        ),
        out=args.out or Path("runs") / f"{args.env}-{args.agent}-seed{args.seed}",
        workers=args.workers,
        backend=args.backend,
        ray_address=args.ray_address,
        cpus_per_child=args.cpus_per_child,
        gpus_per_child=args.gpus_per_child,
    )
    running = search.start()
    out, history = search.out, running.history
    assert out is not None
    console = Console()
    if len(history):
        console.print(
            f"resuming {out}: {history.trainings} trainings done, stepping through its {len(history)} recorded steps from the store"
        )
    outcome = _run_with_progress(args, running, out, console)
    _print_search_outcome(args, outcome, running.tracked, out, console)


def _run_with_progress(args: argparse.Namespace, running: Running, out: Path, console: Console) -> Outcome:
    """Run a started search with a progress bar, logging every new training to TensorBoard."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from torch.utils.tensorboard import SummaryWriter

    history, tracked = running.history, running.tracked
    writer = SummaryWriter(str(out / "tb"))
    best = max((r.accuracy for r in history), default=0.0)
    by_trainings = args.budget_seconds is None  # the bar counts trainings, else train seconds
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            ("trainings" if by_trainings else "train s")
            + "  best {task.fields[best]:.2%}  {task.fields[arch]}"
        ),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        done = (history.rows[-1].seconds if history.rows else 0.0) if not by_trainings else history.trainings
        task = progress.add_task(
            args.agent,
            total=args.budget if by_trainings else args.budget_seconds,
            completed=done,  # type: ignore[arg-type]  # rich takes floats too
            best=best,
            arch="",
        )

        def on_row(row) -> None:
            nonlocal best
            best = max(best, row.accuracy)
            progress.update(
                task, completed=row.training if by_trainings else row.seconds, best=best, arch=row.arch
            )
            if row.new_training:
                writer.add_scalar("search/accuracy", row.accuracy, row.training)
                writer.add_scalar("search/best_accuracy", best, row.training)

        tracked.listeners.append(on_row)
        outcome = running.run()
    writer.close()
    return outcome


def _print_search_outcome(
    args: argparse.Namespace, outcome: Outcome, tracked: Any, out: Path, console: Console
) -> None:
    """What a finished search found and how it spent its budget."""
    from agents.common.runs import layer_table

    summary, tree = outcome.summary, outcome.tree
    assert summary is not None
    if summary["budget_left"] is not None and summary["budget_left"] > 0 and not tracked.exhausted:
        console.print(
            f"[yellow]note: the search ended with {summary['budget_left']} of its {args.budget} trainings "
            "unspent: the agent stopped finding architectures that are not in the store"
        )
    if tracked.resume_mismatches:
        console.print(
            f"[yellow]note: the resumed search left the recorded path {tracked.resume_mismatches} time(s)"
        )
    console.print(tree.to_rich(max_depth=4, top_k=3))
    if summary["best_arch"]:
        console.print(layer_table(summary["best_arch"], summary["best_accuracy"]))
    console.print(
        f"budget use: {summary['train_seconds']:.1f} train seconds, {summary['complete']} complete "
        f"architectures, {summary['prefix_share']:.0%} of the trainings on prefixes of others"
    )
    console.print(
        f"{summary['trainings']} trainings; best {summary['best_arch']} at "
        f"{(summary['best_accuracy'] or 0):.2%}; outputs in {out}"
    )


def cmd_table_build(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from agents.search import env_kwargs
    from nas_gym.build.table import build_table
    from nas_gym.tabular import Space

    _check_trains_children(args.env, "a table")
    kwargs = env_kwargs(args.env, _overrides(args.set, device=args.device, data_dir=args.data_dir))
    from nas_gym.config import ChildConfig

    space = Space.parse(args.space)
    if args.seeds < 1:
        raise CliError(f"--seeds must be >= 1, got {args.seeds}")
    if args.workers < 1:
        raise CliError(f"--workers must be >= 1, got {args.workers}")
    if args.out.is_dir():
        raise CliError(f"--out {args.out} is a folder; give the table's file name")
    store = args.store or args.out.with_name(args.out.name + ".sqlite")
    command = args.command_line
    console = Console()
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trainings  {task.fields[last]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"table {space}", total=None, last="")

        def on_result(done: int, total: int, arch: str, seed: int, accuracy: float) -> None:
            last = f"{arch} s{seed} {accuracy:.2%}" if arch else "resumed from the store" if done else ""
            progress.update(task, completed=done, total=total, last=last)

        table = build_table(
            ChildConfig.from_kwargs(kwargs),
            space,
            range(args.seeds),
            args.out,
            store,
            env_id=args.env,
            workers=args.workers,
            threads=args.threads,
            command=command,
            on_result=on_result,
        )
    console.print(f"{len(table)} architectures x {len(table.seeds)} seeds -> {args.out} (store {store})")


def cmd_samples_build(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from agents.search import env_kwargs
    from nas_gym.build.samples import build_samples
    from nas_gym.config import ChildConfig

    _check_trains_children(args.env, "a samples file")
    kwargs = env_kwargs(args.env, _overrides(args.set, device=args.device, data_dir=args.data_dir))
    if args.n < 0 or args.workers < 1 or args.second_seed_every < 1:
        raise CliError("--n must be >= 0, --workers and --second-seed-every >= 1")
    if args.out.is_dir():
        raise CliError(f"--out {args.out} is a folder; give the samples file's name")
    for run in args.run or []:
        if not (Path(run) / "results.sqlite").exists():
            raise CliError(f"--run {run} has no results.sqlite: not a search folder")
    store = args.store or args.out.with_name(args.out.name + ".sqlite")
    command = args.command_line
    console = Console()
    columns = [
        TextColumn("[bold]samples"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trainings  {task.fields[last]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("samples", total=None, last="")

        def on_result(done: int, total: int, arch: str, seed: int, accuracy: float) -> None:
            last = f"{arch} s{seed} {accuracy:.2%}" if arch else ""
            progress.update(task, completed=done, total=total, last=last)

        result = build_samples(
            ChildConfig.from_kwargs(kwargs),
            args.env,
            args.n,
            args.out,
            store,
            seed=args.seed,
            second_seed_every=args.second_seed_every,
            runs=args.run or [],
            workers=args.workers,
            threads=args.threads,
            command=command,
            on_result=on_result,
        )
    console.print(f"{len(result.samples)} trained samples -> {args.out} (store {store})")


def cmd_table_show(args: argparse.Namespace) -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table as RichTable

    from nas_gym.tabular import Table

    table = Table.load(args.file)
    console = Console(soft_wrap=True)  # long lines stay whole in a log or a pipe
    size = Path(args.file).stat().st_size
    acc = table.accuracies()
    failed = sum(1 for e in table for s in e.status if s != "ok")
    console.print(
        f"[bold]{args.file}[/]: {len(table)} architectures x {len(table.seeds)} seeds "
        f"({size / 1024:.0f} KiB) of {table.env_id}, space {table.space}"
    )
    config = ", ".join(f"{k}={v}" for k, v in sorted(table.config.items()))
    console.print(f"configuration: {config}")
    if table.build:
        console.print("built: " + ", ".join(f"{k}={v}" for k, v in table.build.items()))
    arch, best = table.optimum()
    entry = table.get(arch)
    per_seed = ", ".join(f"{a:.2%}" for a in entry.accuracy)
    console.print(
        f"optimum (mean over seeds): {arch} {best:.2%} (seeds: {per_seed}), {entry.num_params} params"
    )
    for column, seed in enumerate(table.seeds):
        a, v = table.optimum(column)
        console.print(f"optimum of seed {seed}: {a} {v:.2%}")
    quantiles = RichTable(title="mean accuracy over the table")
    for name in ("min", "10%", "25%", "median", "75%", "90%", "99%", "max"):
        quantiles.add_column(name, justify="right")
    q = np.quantile(acc, [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0])
    quantiles.add_row(*(f"{v:.2%}" for v in q))
    console.print(quantiles)
    counts, edges = np.histogram(acc, bins=10)
    top = max(counts.max(), 1)
    for n, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True):
        console.print(f"  {lo:7.2%} - {hi:7.2%} {n:5d} {'#' * int(round(40 * n / top))}")
    if len(table.seeds) > 1:
        cols = np.array([table.accuracies(c) for c in range(len(table.seeds))])
        gap = np.abs(cols[0] - cols[1])
        corr = np.corrcoef(np.argsort(np.argsort(cols[0])), np.argsort(np.argsort(cols[1])))[0, 1]
        console.print(
            f"seed {table.seeds[0]} vs seed {table.seeds[1]}: rank correlation {corr:.3f}, "
            f"median |difference| {np.median(gap):.2%}"
        )
    seconds = sum(sum(e.train_seconds) for e in table)
    console.print(f"failed children: {failed}; train seconds in all: {seconds:.0f}")


def _env_options(p: argparse.ArgumentParser, example: str = "width=0.25") -> None:
    """The options that change the env's children, written once for every command that makes one."""
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: best available)")
    p.add_argument("--data-dir", default=None, help="folder searched first for the dataset")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help=f"override an env kwarg, e.g. {example}"
    )


def _add_evaluate(sub: Any) -> None:
    ev = sub.add_parser("evaluate", help="train one architecture and report validation and test accuracy")
    ev.add_argument(
        "text", nargs="?", help="architecture, e.g. R128-C32k3-C32k3-R64-AP2-R64-R64-C128k4-C64k3"
    )
    ev.add_argument(
        "--env",
        default=None,
        help="env id whose data and child configuration to use (default NASFashionMini-v0)",
    )
    ev.add_argument(
        "--run", type=Path, default=None, help="a finished search folder: evaluate its best architecture"
    )
    ev.add_argument(
        "--epochs",
        type=float,
        default=None,
        help="training epochs (default: the env's; with --run, 3x the run's)",
    )
    ev.add_argument("--seed", type=int, default=None, help="training seed (default 0, or the run's)")
    ev.add_argument("--store", default=None, help="result store path (default: in memory)")
    _env_options(ev)
    ev.set_defaults(func=cmd_evaluate)


def _add_export(sub: Any) -> None:
    ex = sub.add_parser(
        "export",
        help="train a search's best architecture at a final budget and save it as one TorchScript file",
    )
    ex.add_argument("run", type=_folder, help="a finished search folder")
    ex.add_argument(
        "--out", type=_folder, required=True, help="the file to write (its card: the same name, .json)"
    )
    ex.add_argument(
        "--epochs", type=float, default=None, help="epochs of the final training (default 3x the search's)"
    )
    ex.add_argument(
        "--seed", type=int, default=None, help="seed of the final training (default the search's)"
    )
    ex.set_defaults(func=cmd_export)


def _agents_help() -> str:
    """The agents as the registry lists them, with the extra each needs (the help of --agent)."""
    from agents.registry import AGENTS

    return "; ".join(
        f"{name}: {a.summary}" + (f" [{a.needs[1]} extra]" if a.needs else "") for name, a in AGENTS.items()
    )


def _add_search(sub: Any) -> None:
    se = sub.add_parser("search", help="search architectures with an agent under a budget of trainings")
    se.add_argument(
        "--env", default=None, help="env id (default NASFashionMini-v0; NASImages-v0 with --data)"
    )
    se.add_argument(
        "--data",
        type=_folder,
        default=None,
        help="search your own images: a folder with one subfolder per class "
        "(train/ and test/ where you have a test split); the env is NASImages-v0",
    )
    se.add_argument(
        "--agent", default="reinforce", help="the searcher (default: %(default)s): " + _agents_help()
    )
    se.add_argument(
        "--budget",
        type=int,
        default=None,
        help=f"child trainings (default {DEFAULT_BUDGET}, or none with --budget-seconds)",
    )
    se.add_argument(
        "--budget-seconds",
        type=float,
        default=None,
        help="train seconds: the search ends once its trainings' recorded (or predicted) seconds reach this",
    )
    se.add_argument("--seed", type=int, default=0, help="seed of the agent and of every child's training")
    se.add_argument(
        "--out", type=_folder, default=None, help="run folder (default runs/ENV-AGENT-seedS); resumes"
    )
    se.add_argument("--epochs", type=float, default=None, help="override the env's epochs per child")
    _env_options(se, "train_size=4000")
    se.add_argument(
        "--workers",
        type=int,
        default=None,
        help="children trained at once (local: worker processes; ray: tasks in flight, default all CPUs)",
    )
    se.add_argument("--backend", choices=("local", "ray"), default="local", help="where children train")
    se.add_argument("--ray-address", default=None, help="an existing Ray cluster (auto, ray://host:10001)")
    se.add_argument("--cpus-per-child", type=float, default=1, help="Ray: CPUs each child asks for")
    se.add_argument(
        "--gpus-per-child", type=float, default=None, help="Ray: GPUs each child asks for (default 1 on cuda)"
    )
    se.set_defaults(func=cmd_search)


def _builder_options(p: argparse.ArgumentParser, what: str) -> None:
    """What the table and samples builders share: the env, the output, the store, the workers."""
    p.add_argument(
        "--env", default="NASFashionMini-v0", help="env id whose data and child configuration to use"
    )
    p.add_argument("--out", type=Path, required=True, help=f"the {what} file to write (JSON)")
    p.add_argument("--store", type=Path, default=None, help="result store (default OUT.sqlite); resumes")
    p.add_argument("--workers", type=int, default=1, help="children trained at once (processes)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads per worker (default: cores / workers)"
    )
    _env_options(p, "epochs=2")


def _add_table(sub: Any) -> None:
    ta = sub.add_parser(
        "table", help="build or inspect a tabular benchmark (every architecture of a space, trained)"
    )
    tsub = ta.add_subparsers(dest="table_command", required=True)
    tb = tsub.add_parser("build", help="train every architecture of a space for K seeds; resumable")
    tb.add_argument("--space", default=None, required=True, help="TOKENS:DEPTH, e.g. C32k3,C64k3,MP2,DR:3")
    tb.add_argument("--seeds", type=int, default=2, help="training seeds 0..K-1 (default 2)")
    _builder_options(tb, "table")
    tb.set_defaults(func=cmd_table_build)
    ts = tsub.add_parser("show", help="print a table's size, optimum and accuracy distribution")
    ts.add_argument("file", type=Path, help="a table file")
    ts.set_defaults(func=cmd_table_show)


def _add_samples(sub: Any) -> None:
    sa = sub.add_parser("samples", help="train architectures sampled across the full space (surrogate data)")
    ssub = sa.add_subparsers(dest="samples_command", required=True)
    sb = ssub.add_parser("build", help="train N sampled architectures (depth uniform in 1..15); resumable")
    sb.add_argument("--n", type=int, required=True, help="architectures to sample (seed 0 each)")
    sb.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    sb.add_argument(
        "--second-seed-every", type=int, default=8, help="train every k-th sample with seed 1 too (default 8)"
    )
    sb.add_argument("--run", action="append", help="a search folder whose trained children to include")
    _builder_options(sb, "samples")
    sb.set_defaults(func=cmd_samples_build)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas-gym", description="Neural Architecture Search on Gymnasium envs with real child training."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_evaluate, _add_export, _add_search, _add_table, _add_samples):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # the command as typed (kept in the files that table and samples builds write)
    args.command_line = shlex.join(["nas-gym", *(sys.argv[1:] if argv is None else argv)])
    try:
        args.func(args)
    except (CliError, ValueError, ImportError) as e:  # our data, store, run and token errors; an extra
        print(f"nas-gym: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas-gym: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
