"""The benchmark scripts run end to end at tiny budgets (their figures are not checked here)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT = ROOT / "benchmarks" / "trainer_throughput.py"
ROW = re.compile(r"^(ours \(device-resident\)|dataloader workers=\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _accuracies(stdout: str) -> dict[str, float]:
    return {m[1]: float(m[4]) for line in stdout.splitlines() if (m := ROW.match(line.strip()))}


def test_trainer_throughput_runs() -> None:
    # 1024 images, 0.1 epoch: 2 steps of each loop, well under 30 s even on a loaded 2-core box
    tiny = "--epochs 0.1 --workers 0 --device cpu --train-size 1024 --val-size 512".split()
    proc = subprocess.run(
        [sys.executable, str(THROUGHPUT), *tiny],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"speedup_vs_dataloader: \d+\.\d\d", lines[-1]), lines[-1]
    accuracies = _accuracies(proc.stdout)
    assert set(accuracies) == {"ours (device-resident)", "dataloader workers=0"}, proc.stdout
    assert all(0.0 <= a <= 1.0 for a in accuracies.values())


def test_trainer_throughput_cifar_path_imported(data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Importable, and the CIFAR-10 path (crop + flip on both sides) runs on the fixture batches."""
    spec = importlib.util.spec_from_file_location("trainer_throughput", THROUGHPUT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    args = "--env NASCifar10-v0 --no-download --device cpu --train-size 256 --val-size 64 --epochs 1"
    speedup = module.main(
        [*args.split(), "--arch", "C32k3-AP2", "--workers", "0", "--data-dir", str(data_root)]
    )
    out = capsys.readouterr().out
    assert speedup > 0
    assert "augment=True" in out and "batch 256, 1 steps" in out
    assert len(_accuracies(out)) == 2
    assert out.strip().splitlines()[-1] == f"speedup_vs_dataloader: {speedup:.2f}"


@pytest.mark.slow
def test_gpu_check_dry_run(tmp_path: Path) -> None:
    """The GPU check's code paths at a tiny budget on the CPU (needs the full Fashion-MNIST locally)."""
    from nas_gym.training.data import DatasetError, load_dataset

    try:
        load_dataset("fashion_mnist", download=False)
    except DatasetError:
        pytest.skip("the full Fashion-MNIST is not installed here")
    env = _env() | {"OUT": str(tmp_path)}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = (tmp_path / "gpu_check.txt").read_text()
    assert "final_result: s_per_epoch=" in report
    assert report.count("speedup_vs_dataloader:") >= 4  # two runs + their two summary rows
