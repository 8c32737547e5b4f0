"""Tabular benchmarks: every architecture of a small space trained for real, then looked up.

A :class:`Space` is a vocabulary subset and a maximum depth, written ``TOKENS:DEPTH``
(``"C32k3,C64k3,MP2,DR:3"``). :func:`nas_gym.build.table.build_table` trains each architecture
of the space for each seed through the normal :class:`~nas_gym.evaluation.Evaluator` and its
result store (so a build that stops resumes where it was), then writes a :class:`Table`: a small
JSON file of architecture -> accuracy per seed, parameters and train seconds.
:class:`TableEvaluator` answers an env's requests from a table, without training
(``NASTabular-v0``).

Numpy and the standard library only: what the table env reads at run time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.answers import Answer, StoredAnswers
from nas_gym.evaluation import check_fixed_epochs
from nas_gym.search_space import Architecture, OutOfSpaceError, Vocabulary, layer_from_token
from nas_gym.store import KeyedStore, ResultStore

__all__ = [
    "MINI_SPACE",
    "SHIPPED_TABLE",
    "Space",
    "Table",
    "TableEntry",
    "TableError",
    "TableEvaluator",
]

FORMAT = "nas-gym-table/1"

# The space of the shipped table: 8 cheap layers (convs of three shapes, a residual block, a
# strided residual block, two pools, dropout), up to 3 deep: 583 architectures that fit 14x14.
MINI_SPACE = "C32k3,C64k3,C64k5,R32,R64s2,MP2,AP3,DR:3"
SHIPPED_TABLE = Path(__file__).parent / "data" / "tables" / "fashion_mini.json"


class TableError(ValueError):
    """A table file that cannot be read, or an architecture it does not hold; names the file."""


@dataclass(frozen=True)
class Space:
    """A search space for a table: the layers an agent may pick and how deep it may go."""

    tokens: tuple[str, ...]
    max_layers: int

    def __post_init__(self) -> None:
        for token in self.tokens:
            layer_from_token(token)  # names a bad token
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError(f"space lists a layer twice: {','.join(self.tokens)}")
        if not self.tokens:
            raise ValueError("a space needs at least one layer token")
        if isinstance(self.max_layers, bool) or not isinstance(self.max_layers, int) or self.max_layers < 1:
            raise ValueError(f"space depth must be a positive int, got {self.max_layers!r}")

    @classmethod
    def parse(cls, text: str) -> Space:
        """``"C32k3,C64k3,MP2:3"``: comma-separated layer tokens, a colon, the maximum depth."""
        tokens_text, sep, depth_text = text.rpartition(":")
        if not sep or not depth_text.strip().isdigit():
            raise ValueError(f"space {text!r} is not TOKENS:DEPTH, e.g. {MINI_SPACE!r}")
        tokens = tuple(t.strip() for t in tokens_text.split(",") if t.strip())
        return cls(tokens, int(depth_text))

    def __str__(self) -> str:
        return f"{','.join(self.tokens)}:{self.max_layers}"

    @property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary.from_tokens(self.tokens, self.max_layers)

    def architectures(self, image_size: int) -> list[Architecture]:
        """Every architecture of 1..max_layers layers that fits the input, shortest first, each
        length in the vocabulary's action order."""
        vocab = self.vocabulary
        out = []
        for depth in range(1, self.max_layers + 1):
            for layers in product(vocab.layers, repeat=depth):
                arch = Architecture(layers)
                if arch.fits(image_size):
                    out.append(arch)
        return out


@dataclass(frozen=True)
class TableEntry:
    arch: str
    num_params: int
    accuracy: tuple[float, ...]  # one per seed of the table, 0.0 for a failed child
    train_seconds: tuple[float, ...]
    status: tuple[str, ...]

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.accuracy))


@dataclass
class Table:
    """Trained architectures of one space, at one training configuration, for a few seeds."""

    env_id: str
    dataset: str
    config: dict[str, Any]  # the children's configuration (ChildConfig.key, as a dict); "budget" in the file
    image_size: int
    space: Space
    seeds: tuple[int, ...]
    entries: dict[str, TableEntry]
    build: dict[str, Any] = field(default_factory=dict)  # how it was built: command, date, time

    # -- files ----------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Table:
        p = Path(path).expanduser()
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TableError(f"table {p} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TableError(f"table {p} is not a readable JSON file: {e}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise TableError(f"table {p} is not a nas-gym table (format {FORMAT!r})")
        try:
            seeds = tuple(int(s) for s in doc["seeds"])
            entries = {}
            for arch, params, acc, secs, status in doc["rows"]:
                if not len(acc) == len(secs) == len(status) == len(seeds):
                    raise ValueError(f"row {arch} does not hold one value per seed")
                entries[arch] = TableEntry(
                    arch, int(params), tuple(map(float, acc)), tuple(map(float, secs)), tuple(status)
                )
            return cls(
                env_id=str(doc["env_id"]),
                dataset=str(doc["dataset"]),
                config=dict(doc["budget"]),
                image_size=int(doc["image_size"]),
                space=Space.parse(doc["space"]),
                seeds=seeds,
                entries=entries,
                build=dict(doc.get("build", {})),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise TableError(f"table {p} is damaged: {e}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (a temporary file renamed over ``path``)."""
        doc = {
            "format": FORMAT,
            "env_id": self.env_id,
            "dataset": self.dataset,
            "budget": self.config,  # the field keeps its first name: files written before read unchanged
            "image_size": self.image_size,
            "space": str(self.space),
            "seeds": list(self.seeds),
            "build": self.build,
            "columns": [
                "arch",
                "num_params",
                "accuracy per seed",
                "train seconds per seed",
                "status per seed",
            ],
            "rows": [
                [
                    e.arch,
                    e.num_params,
                    list(e.accuracy),
                    [round(s, 3) for s in e.train_seconds],
                    list(e.status),
                ]
                for e in self.entries.values()
            ],
        }
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        text = json.dumps(doc, separators=(",", ":"))
        # one row per line: small, and readable with a pager or a diff
        text = text.replace('],["', '],\n["').replace('"rows":[[', '"rows":[\n[')
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, p)

    # -- queries --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[TableEntry]:
        return iter(self.entries.values())

    def get(self, arch: Architecture | str) -> TableEntry:
        key = str(arch)
        try:
            return self.entries[key]
        except KeyError:
            raise TableError(f"{key} is not in the table of space {self.space}") from None

    def digest(self) -> str:
        """A short hash of the table's rows (architectures, accuracies, seconds, statuses)."""
        import hashlib

        text = json.dumps(
            [[e.arch, e.accuracy, e.train_seconds, e.status] for e in sorted(self, key=lambda e: e.arch)]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def column(self, seed: int) -> int:
        """The seed column a run seeded ``seed`` reads: ``seed`` modulo the number of seeds."""
        return int(seed) % len(self.seeds)

    def accuracies(self, column: int | None = None) -> np.ndarray:
        """Accuracy of every architecture (table order) in one seed column, or the mean over seeds."""
        if column is None:
            return np.array([e.mean_accuracy for e in self])
        return np.array([e.accuracy[column] for e in self])

    def optimum(self, column: int | None = None) -> tuple[str, float]:
        acc = self.accuracies(column)
        i = int(np.argmax(acc))
        return list(self.entries)[i], float(acc[i])


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> Table:
    return Table.load(path)


def load_table(path: str | os.PathLike[str] | None = None) -> Table:
    """A table, parsed once per process and file version (``None``: the shipped table)."""
    p = Path(path).expanduser() if path is not None else SHIPPED_TABLE
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        raise TableError(f"table {p} does not exist") from None
    return _load_cached(str(p.resolve()), mtime)


ACCURACY_MODES = ("seed", "mean")


class TableEvaluator(StoredAnswers):
    """The evaluator interface of :class:`~nas_gym.envs.NASEnvBase`, answered from a table.

    A *training* is counted the first time an (architecture, seed column) is asked for, as a real
    evaluator counts store misses: the row then goes to ``store`` (in memory by default; a file
    makes a tabular search resumable like a real one). ``train_seconds`` adds what that training
    took when the table was built, so agents can be compared at equal simulated time too.
    ``accuracy="seed"`` reads the column ``seed % len(table.seeds)``; ``"mean"`` the mean of all.
    """

    kind = "table"
    device = "table"
    takes_epochs = False

    def __init__(
        self, table: Table, accuracy: str = "seed", store: ResultStore | str | os.PathLike[str] | None = None
    ) -> None:
        if accuracy not in ACCURACY_MODES:
            raise ValueError(f"accuracy must be one of {ACCURACY_MODES}, got {accuracy!r}")
        # the store key: the table itself (a digest of its rows), its configuration, and the seed
        # column (or "mean") it reads: two tables of one space and configuration never share rows
        super().__init__(store, f"table:{table.dataset}:{table.space}")
        self.table = table
        self.mode = accuracy
        self.image_size = table.image_size
        self.vocabulary = table.space.vocabulary
        key = json.dumps(
            {**table.config, "table_accuracy": accuracy, "table": table.digest()}, sort_keys=True
        )
        self.filed = KeyedStore(self.store, self.dataset, key)

    @property
    def epochs(self) -> float:
        """The epochs its children were trained (its one fidelity)."""
        return float(self.table.config.get("epochs", 0.0))

    def filed_at(self, epochs: float | None) -> KeyedStore:
        """Where its answers are filed (it answers at its own epochs only)."""
        check_fixed_epochs("a table", self.epochs, epochs)
        return self.filed

    def stored_seed(self, seed: int) -> int:
        """The seed a row is filed under: its column (the first for "mean")."""
        return max(self._column(int(seed)), 0)

    def _column(self, seed: int) -> int:
        return -1 if self.mode == "mean" else self.table.column(seed)

    def _values(self, entry: TableEntry, column: int) -> tuple[float, float, str]:
        if column < 0:
            ok = all(s == "ok" for s in entry.status)
            return entry.mean_accuracy, float(np.mean(entry.train_seconds)), "ok" if ok else "mixed"
        return entry.accuracy[column], entry.train_seconds[column], entry.status[column]

    def _answer(self, arch: Architecture | str, text: str, seed: int, epochs: float | None) -> Answer:
        try:
            entry = self.table.get(text)
        except TableError:
            # a layer outside the space or a depth beyond it: say which
            parsed = Architecture.parse(text) if isinstance(arch, str) else arch
            self.vocabulary.validate(parsed, self.image_size)
            raise OutOfSpaceError(f"{text} is not in the table of space {self.table.space}") from None
        accuracy, seconds, status = self._values(entry, self._column(seed))
        return Answer(accuracy, entry.num_params, seconds, status)

    def recorded_seconds(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> float:
        """What training ``arch`` took when the table was built (its seed column, or the mean)."""
        self.filed_at(epochs)
        return self._values(self.table.get(str(arch)), self._column(seed))[1]

    def num_params(self, arch: Architecture | str) -> int:
        entry = self.table.entries.get(str(arch))
        return 0 if entry is None else entry.num_params
