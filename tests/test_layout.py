"""The direction of imports (docs/layout.md): a change that imports backwards fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the steps of the flow, in order; a module may import its own step and earlier ones only
STEPS = {
    "nas_gym.search_space": 0,
    "nas_gym.drawing": 0,
    "nas_gym.models": 1,
    "nas_gym.training": 2,
    "nas_gym.training.datasets": 2,
    "nas_gym.training.images": 2,
    "nas_gym.training.trainer": 2,
    "nas_gym.workers": 2,
    "nas_gym.config": 2,
    "nas_gym.store": 3,
    "nas_gym.child": 3,
    "nas_gym.evaluation": 3,
    "nas_gym.answers": 3,
    "nas_gym.tabular": 3,
    "nas_gym.surrogate": 3,
    "nas_gym.parallel": 3,
    "nas_gym.weights": 3,
    "nas_gym.envs": 4,
    "nas_gym.vector": 4,
    "nas_gym.registration": 4,
    "nas_gym": 4,
    # the builders of tables, samples and the surrogate's fit: they may import any of the above
    "nas_gym.build": 5,
    "nas_gym.build.table": 5,
    "nas_gym.build.samples": 5,
    "nas_gym.build.surrogate": 5,
    "nas_gym.build.fidelity_surrogate": 5,
    "nas_gym.build.fashion_mini": 5,
}
ALGORITHMS = {
    "agents.reinforce",
    "agents.reinforce_uct",
    "agents.random_search",
    "agents.evolution",
    "agents.local_search",
    "agents.bananas",
    "agents.tpe",
    "agents.sb3_agents",
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "data" not in p.relative_to(ROOT).parts[1:2])


@pytest.mark.parametrize("path", _files("nas_gym"), ids=lambda p: str(p.relative_to(ROOT)))
def test_nas_gym_imports_only_forward(path: Path) -> None:
    me = _module(path)
    assert me in STEPS, f"{me} has no step in the flow: add it to STEPS (and to docs/layout.md)"
    for name in _imports(path):
        assert not name.startswith("agents"), f"{me} imports {name}: the env package never imports agents"
        if name in STEPS and name != "nas_gym":
            assert STEPS[name] <= STEPS[me], f"{me} (step {STEPS[me]}) imports {name} (step {STEPS[name]})"


def test_search_space_needs_no_torch() -> None:
    assert not any(n.split(".")[0] == "torch" for n in _imports(ROOT / "nas_gym" / "search_space.py"))


@pytest.mark.parametrize("path", _files("agents/common"), ids=lambda p: p.name)
def test_the_shared_machinery_never_imports_an_algorithm(path: Path) -> None:
    for name in _imports(path):
        assert not any(name == a or name.startswith(a + ".") for a in ALGORITHMS), (
            f"{path.name} imports {name}"
        )
        assert name not in ("agents.registry", "agents.cli", "agents.search"), f"{path.name} imports {name}"


def test_the_table_and_the_surrogate_run_without_torch_or_the_builders() -> None:
    """Making and stepping the table and surrogate envs (single and vector) imports no torch, no
    pool, no model builder or trainer, no sample builder and no LightGBM."""
    import subprocess
    import sys

    code = (
        "import sys, gymnasium as gym, nas_gym\n"
        "for i in ('NASTabular-v0', 'NASSurrogate-v1'):\n"
        "    e = gym.make(i); e.reset(seed=0); e.step(1); e.step(int(e.action_space.n) - 1)\n"
        "v = gym.make_vec('NASSurrogate-v1', num_envs=2); v.reset(seed=0); v.step([1, 1])\n"
        "heavy = ('torch', 'nas_gym.parallel', 'nas_gym.build', 'nas_gym.models', 'nas_gym.training.trainer', 'lightgbm')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
