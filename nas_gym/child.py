"""Where a child trains: in this process, or in a worker process under a watchdog.

A child can fail in ways Python cannot catch: a convolution kernel that hangs or corrupts the
heap inside native code (oneDNN, cuDNN, a driver) stops the whole process, or never returns, and
a time limit checked between training steps never gets to run. :class:`ChildProcess` therefore
trains children in a worker process (``python -m nas_gym.child``, started once and reused, the
data loaded there once) and watches it from outside:

- the worker counts every optimizer step and evaluation batch in a shared heartbeat; a child
  that makes no progress for ``hang_limit`` seconds is killed and recorded as ``hung``;
- a worker that dies (a signal, ``abort()``, a segfault) gives ``crashed``, with the signal;
- a child past its ``time_limit`` (plus a grace for the step in flight) is killed: ``timeout``.

The worker is started again for the next child. Requests and outcomes travel pickled over the
worker's stdin/stdout (its own prints go to stderr), so it works inside daemonic processes such as
the workers of a Gymnasium vector env, where ``multiprocessing`` may not start children.

:class:`LocalTrainer` is the same training in this process: what the worker runs, and what an
evaluator with ``isolate=False`` uses.
"""

from __future__ import annotations

import importlib
import mmap
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas_gym.config import DEFAULT_BUILDER, ChildConfig
from nas_gym.search_space import Architecture

__all__ = [
    "ChildOutcome",
    "ChildProcess",
    "ChildRequest",
    "ChildSetup",
    "DataSpec",
    "LocalTrainer",
    "resolve_builder",
]

_TIMEOUT_GRACE = 5.0  # seconds past time_limit before the watchdog kills a child stuck in a step
_POLL = 0.05  # seconds between two looks at the worker


@dataclass(frozen=True)
class DataSpec:
    """Which data a child trains on, and how its model is built: what a worker needs to start."""

    dataset: str
    train_size: int | None
    val_size: int
    image_size: int
    split_seed: int
    width: float
    data_dir: str | None
    download: bool
    device: str  # resolved: "cpu", "cuda:0", ...
    builder: str = DEFAULT_BUILDER  # "module:function" with build_model's signature


@dataclass(frozen=True)
class ChildRequest:
    arch: str
    seed: int
    config: Any  # TrainConfig
    final: bool  # also measure the test set, with the same trained model
    threads: int | None  # torch threads on the CPU
    parent_weights: str | None = None  # start from the trained prefix saved in this file
    save_weights: str | None = None  # save the trained weights here (for the children's inheritance)


@dataclass(frozen=True)
class ChildOutcome:
    accuracy: float
    status: str
    message: str
    train_seconds: float
    test_accuracy: float | None
    device: str
    curve: tuple[tuple[float, float, float], ...] = ()  # see TrainResult.curve


def resolve_builder(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"model builder {path!r} cannot be imported: {e}") from e


class ChildSetup:
    """A :class:`~nas_gym.config.ChildConfig` with where its children train resolved once, at the
    first use: the torch device (``device=None``: CUDA when available) and, on the CPU, the torch
    thread count (``threads=None``: this process's share). Both are part of the store key, so they
    stay fixed for the life of this object (and of its pickled copies).

    ``child`` is the configuration itself; a request for other ``epochs`` trains with
    :meth:`request_config` and is filed under :meth:`key_of` of those epochs.
    """

    def __init__(self, config: ChildConfig) -> None:
        self.child = config
        self._device: Any = None  # torch.device once resolved
        self._threads: int | None = config.threads  # fixed at the first use when None

    def request_config(self, epochs: float | None = None) -> ChildConfig:
        """The configuration a request for ``epochs`` trains with (None: :attr:`child`'s own)."""
        if epochs is None or epochs == self.child.epochs:
            return self.child
        return self.child.replace(epochs=float(epochs))

    @property
    def torch_device(self) -> Any:
        """The ``torch.device`` children train on (resolved at the first use)."""
        if self._device is None:
            from nas_gym.training.trainer import resolve_device

            self._device = resolve_device(self.child.device)
        return self._device

    @property
    def device_type(self) -> str:
        """The device kind children train on: ``"cpu"``, ``"cuda"``, ..."""
        return str(self.torch_device.type)

    @property
    def torch_threads(self) -> int:
        """The torch threads children train with on the CPU (fixed at the first use)."""
        if self._threads is None:
            from nas_gym.workers import default_threads

            self._threads = default_threads()
        return self._threads

    def key_of(self, epochs: float | None = None) -> str:
        """The store key of a request for ``epochs`` (None: :attr:`child`'s own): its
        :meth:`ChildConfig.key`, with the device kind and the thread count resolved here."""
        device = self.device_type
        return self.request_config(epochs).key(device, self.torch_threads if device == "cpu" else None)

    def data_spec(self) -> DataSpec:
        """What a worker needs to train these children."""
        child = self.child
        return DataSpec(
            dataset=child.dataset,
            train_size=child.train_size,
            val_size=child.val_size,
            image_size=int(child.image_size),  # type: ignore[arg-type]
            split_seed=child.split_seed,
            width=float(child.width),
            data_dir=child.data_dir,
            download=child.download,
            device=str(self.torch_device),
            builder=child.model_builder,
        )

    def num_params(self, arch: Architecture | str) -> int:
        """The parameters of ``arch``'s model (0 when it shrinks the input below 1x1)."""
        arch = Architecture.parse(arch) if isinstance(arch, str) else arch
        child, info = self.child, self.child.dataset_info
        size = int(child.image_size)  # type: ignore[arg-type]
        if not arch.fits(size):
            return 0
        if child.model_builder == DEFAULT_BUILDER:  # counted by the layers, as it builds them
            return arch.num_params(info.channels, info.num_classes, child.width)
        import torch

        from nas_gym.models import count_parameters

        build = resolve_builder(child.model_builder)
        with torch.random.fork_rng(devices=[]):  # building draws from the RNG: leave the caller's alone
            return count_parameters(build(arch, info.channels, size, info.num_classes, child.width))


class LocalTrainer:
    """Trains children in this process; the data are loaded on first use and kept."""

    def __init__(self, spec: DataSpec) -> None:
        self.spec = spec
        self._data: Any = None
        self._raw: Any = None
        self._builder = resolve_builder(spec.builder)

    def load(self) -> Any:
        if self._data is None:
            from nas_gym.training.datasets import DATASETS, load_dataset, resize_images, split_train_val
            from nas_gym.training.trainer import DeviceData

            s = self.spec
            raw = load_dataset(s.dataset, s.data_dir, s.download)
            split = split_train_val(raw, s.train_size, s.val_size, s.split_seed)
            self._info = DATASETS[s.dataset]
            self._data = DeviceData.from_numpy(
                resize_images(split.train_x, s.image_size),
                split.train_y,
                resize_images(split.val_x, s.image_size),
                split.val_y,
                s.device,
            )
            self._raw = raw
        return self._data

    def run(self, request: ChildRequest, progress: Callable[[], None] | None = None) -> ChildOutcome:
        import torch

        from nas_gym.search_space import Architecture
        from nas_gym.training.datasets import resize_images
        from nas_gym.training.trainer import evaluate_accuracy, train

        data = self.load()
        s, info = self.spec, self._info
        arch = Architecture.parse(request.arch)

        parent = None
        if request.parent_weights is not None:
            parent = torch.load(request.parent_weights, map_location="cpu", weights_only=True)

        def make_model():
            model = self._builder(arch, info.channels, s.image_size, info.num_classes, s.width)
            if parent is not None:
                from nas_gym.models import inherit_from

                inherit_from(model, parent)
            return model

        previous = torch.get_num_threads()
        if request.threads is not None and data.device.type == "cpu":
            torch.set_num_threads(request.threads)
        try:
            keep = request.final or request.save_weights is not None
            if progress is None:
                result = train(make_model, data, request.config, request.seed, keep_model=keep)
            else:
                result = train(
                    make_model, data, request.config, request.seed, keep_model=keep, progress=progress
                )
            if request.save_weights is not None and result.model is not None and result.status == "ok":
                state = {k: v.detach().to("cpu", copy=True) for k, v in result.model.state_dict().items()}
                tmp = f"{request.save_weights}.{os.getpid()}.tmp"
                torch.save(state, tmp)
                os.replace(tmp, request.save_weights)  # whole or absent, for a reader in another process
            test = None
            if request.final and result.model is not None and result.status == "ok":
                test_data = data.with_validation(
                    resize_images(self._raw.test_x, s.image_size), self._raw.test_y
                )
                test = evaluate_accuracy(result.model, test_data.val_x, test_data.val_y, data)
        finally:
            torch.set_num_threads(previous)
        return ChildOutcome(
            result.accuracy,
            result.status,
            result.message,
            result.train_seconds,
            test,
            str(data.device),
            result.curve,
        )


# -- the worker process ---------------------------------------------------------------------------

_LENGTH = struct.Struct("<Q")


def _send(stream: Any, obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _read_exactly(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError("the worker closed its pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> Any:
    (n,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size))
    return pickle.loads(_read_exactly(fd, n))


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class ChildProcess:
    """Trains children in a worker process and watches it (see the module docstring).

    ``hang_limit``: seconds without a training step or evaluation batch before a child counts as
    hung (loading the data at the worker's start is not watched). The worker starts at the first
    child and is reused; :meth:`close` ends it (it also ends when this process does).
    """

    def __init__(self, spec: DataSpec, hang_limit: float = 120.0) -> None:
        if not hang_limit > 0:
            raise ValueError(f"hang_limit must be > 0 seconds, got {hang_limit!r}")
        self.spec = spec
        self.hang_limit = float(hang_limit)
        self._proc: subprocess.Popen[bytes] | None = None
        self._beat: mmap.mmap | None = None
        self._beat_file: Any = None

    def _start(self) -> None:
        self._beat_file = tempfile.TemporaryFile()
        self._beat_file.write(b"\0" * 8)
        self._beat_file.flush()
        self._beat = mmap.mmap(self._beat_file.fileno(), 8)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # a test's builder module too
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "nas_gym.child", str(self._beat_file.fileno())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=(self._beat_file.fileno(),),
            env=env,
        )
        assert self._proc.stdin is not None
        _send(self._proc.stdin, self.spec)

    def _heartbeat(self) -> int:
        assert self._beat is not None
        return struct.unpack("<q", self._beat[:8])[0]

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
        if self._beat is not None:
            self._beat.close()
            self._beat_file.close()
        self._proc, self._beat, self._beat_file = None, None, None

    def run(self, request: ChildRequest) -> ChildOutcome:
        """Train one child in the worker; a hang, a crash or an overrun becomes the outcome."""
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._start()
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        started = time.monotonic()
        assert self._beat is not None
        self._beat[:8] = struct.pack("<q", -1)  # until the worker says it trains
        try:
            _send(proc.stdin, request)
        except (BrokenPipeError, OSError):
            pass  # the worker died at its start: poll() below says how
        fd = proc.stdout.fileno()
        last_beat, last_change, training_since = -1, started, None
        limit = request.config.time_limit
        while True:
            ready, _, _ = select.select([fd], [], [], _POLL)
            now = time.monotonic()
            if ready:
                try:
                    reply = _receive(fd)
                except (EOFError, OSError, pickle.UnpicklingError):
                    reply = None
                if isinstance(reply, ChildOutcome):
                    return reply
                if isinstance(reply, BaseException):  # the worker could not even try (bad data)
                    self._kill()
                    raise reply
                proc.wait()
            code = proc.poll()
            if code is not None:
                self._kill()
                how = _signal_name(code) if code < 0 else f"exit status {code}"
                return self._failed("crashed", f"the worker process died ({how}) while training", started)
            beat = self._heartbeat()
            if beat != last_beat:
                last_beat, last_change = beat, now
            if beat >= 0 and training_since is None:
                training_since = now
            if beat < 0:  # loading the data: not watched
                last_change = now
            elif now - last_change > self.hang_limit:
                self._kill()
                return self._failed(
                    "hung",
                    f"no training progress for {self.hang_limit:g} s (killed by the watchdog)",
                    started,
                )
            elif (
                limit is not None
                and training_since is not None
                and now - training_since > limit + _TIMEOUT_GRACE
            ):
                self._kill()
                return self._failed(
                    "timeout", f"time limit of {limit} s overrun (killed by the watchdog)", started
                )

    def _failed(self, status: str, message: str, started: float) -> ChildOutcome:
        return ChildOutcome(0.0, status, message, time.monotonic() - started, None, self.spec.device)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None and self._proc.stdin is not None:
            try:
                _send(self._proc.stdin, None)
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __del__(self) -> None:
        try:
            self._kill()
        except Exception:
            pass


def _serve(beat_fd: int) -> None:
    """The worker: read a DataSpec, then requests; answer each with a ChildOutcome."""
    out = os.fdopen(os.dup(1), "wb")  # the protocol's own copy of stdout
    os.dup2(2, 1)  # anything else printed goes to stderr
    stdin = sys.stdin.buffer.fileno()
    beat = mmap.mmap(beat_fd, 8)

    def set_beat(value: int) -> None:
        beat[:8] = struct.pack("<q", value)

    from nas_gym.workers import end_with_parent

    end_with_parent()
    spec = _receive(stdin)
    trainer = LocalTrainer(spec)
    count = 0

    def progress() -> None:
        nonlocal count
        count += 1
        set_beat(count)

    while True:
        try:
            request = _receive(stdin)
        except EOFError:
            return
        if request is None:
            return
        set_beat(-1)  # loading data is not watched
        try:
            trainer.load()
        except Exception as e:  # noqa: BLE001 - the parent raises it as its own
            _send(out, e)
            continue
        count = 0
        set_beat(0)
        try:
            outcome = trainer.run(request, progress)
        except Exception as e:  # noqa: BLE001 - a child's Python error is its outcome
            outcome = ChildOutcome(0.0, "error", f"{type(e).__name__}: {e}"[:500], 0.0, None, spec.device)
        _send(out, outcome)


if __name__ == "__main__":
    # run the module's own copy, so what is pickled names nas_gym.child, not __main__
    from nas_gym.child import _serve as serve

    serve(int(sys.argv[1]))
