"""Every Python and shell block of the README and of docs/ runs as written (the other libraries'
recipes run in tests/test_other_libraries.py, where their libraries are installed); the README stays
short.

A shell block that cannot run here says why in an HTML comment directly before its fence,
``<!-- not run: REASON -->``; it is skipped with that reason, so every such block is listed in the
test report.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- recipe: [\w-]+ -->\n)?```python\n(.*?)```", re.S)
# a shell block, with the comment directly before its fence when it has one
SHELL = re.compile(r"(?:<!-- (recipe|not run): ([^\n]*?) -->\n)?```(bash|sh|shell|console)\n(.*?)```", re.S)
# pages whose shell blocks take minutes (trainings, agent comparisons over every agent): about 3
# and 3.5 minutes on a busy 2-core machine, where the README's take 20 s
SLOW_PAGES = {"agents.md", "benchmarks.md"}
# the folders of the checkout the blocks name (they run from its root, as a reader runs them)
CHECKOUT = ("agents", "benchmarks", "examples", "nas_gym")


def _blocks(page: Path) -> list[str]:
    return [code for recipe, code in BLOCK.findall(page.read_text()) if not recipe]


def test_the_readme_is_short_and_links_every_docs_page() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 150
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in text, page.name


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)], ids=lambda p: p.name)
def test_every_python_block_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torch_single_thread
) -> None:
    """A page's blocks run in order in one namespace, as a reader runs them in one session."""
    monkeypatch.chdir(tmp_path)  # what a block writes (a store, a run folder) lands here
    namespace: dict = {"__name__": "__docs__"}
    for i, code in enumerate(_blocks(page)):
        exec(compile(code, f"{page.name}[{i}]", "exec"), namespace)
    assert os.getcwd() == str(tmp_path)


def _shell_blocks(page: Path) -> list[tuple[int, str | None, str]]:
    """(line, reason it is not run or None, code) of each shell block of ``page`` that is not a
    recipe; a console block's commands are its ``$ `` lines."""
    text = page.read_text()
    blocks = []
    for found in SHELL.finditer(text):
        marker, reason, language, code = found.groups()
        if marker == "recipe":
            continue
        if language == "console":
            code = "".join(line[2:] + "\n" for line in code.splitlines() if line.startswith("$ "))
        line = text.count("\n", 0, found.start(3)) + 1  # the fence's line
        blocks.append((line, reason if marker == "not run" else None, code))
    return blocks


def _page_param(page: Path) -> object:
    marks = [pytest.mark.slow] if page.name in SLOW_PAGES else []
    return pytest.param(page, id=page.name, marks=marks)


def _own_images(folder: Path) -> None:
    """The README's ``my_images/``: the shipped subset as PNG files, one folder per class."""
    from test_own_data import write_image_folder

    write_image_folder(folder / "my_images", n_train=100, n_test=20)


# what a page's blocks expect to find that the reader brings (their own data)
BROUGHT = {"README.md": _own_images}


def _run(code: str, where: str, cwd: Path, env: dict[str, str], timeout: float) -> None:
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends the workers it started too
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{where} ran past {timeout:.0f} s:\n{code}\nstderr:\n{err[-4000:]}")
    if process.returncode != 0:
        pytest.fail(
            f"{where} exited with {process.returncode}:\n{code}\n"
            f"stdout:\n{out[-2000:]}\nstderr:\n{err[-4000:]}"
        )


@pytest.mark.parametrize(
    "page", [_page_param(p) for p in PAGES if any(r is None for _, r, _ in _shell_blocks(p))]
)
def test_every_shell_block_runs(page: Path, tmp_path: Path) -> None:
    """A page's blocks run in order in one folder, each in ``bash -euo pipefail``, as a reader types
    them in one terminal at the checkout's root; what they write lands in the temporary folder."""
    bin_dir = Path(sys.executable).parent  # the environment the tests run in, nas-gym installed
    assert shutil.which("nas-gym", path=str(bin_dir)), f"no nas-gym in {bin_dir}: pip install -e ."
    for name in CHECKOUT:
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    if page.name in BROUGHT:
        BROUGHT[page.name](tmp_path)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "OMP_NUM_THREADS": "1",  # torch's default thread pool spins against a shared 2-core machine
        "NAS_GYM_DATA": str(tmp_path / "data"),  # prepared images land here, not in ~/.cache
    }
    timeout = 900 if page.name in SLOW_PAGES else 300
    for line, reason, code in _shell_blocks(page):
        if reason is None:
            _run(code, f"{page.name}:{line}", tmp_path, env, timeout)


@pytest.mark.parametrize(
    "page, line, reason, code",
    [
        pytest.param(p, line, r, code, id=f"{p.name}:{line}")
        for p in PAGES
        for line, r, code in _shell_blocks(p)
        if r is not None
    ],
)
def test_a_shell_block_not_run_says_why(page: Path, line: int, reason: str, code: str) -> None:
    assert reason.strip(), f"{page.name}:{line}: a block marked not run gives no reason"
    first = code.strip().splitlines()[0]
    pytest.skip(f"{page.name}:{line} not run ({reason}): {first}")
