"""Model builders for the isolation tests: children that crash or hang in native code.

``build_model`` builds the real child, wrapped so that on its 2nd forward pass in training a child
whose architecture contains ``C128k5`` aborts the process (``abort()`` in libc, as a heap
corruption does), one containing ``C128k4`` blocks every signal it can and sleeps in C forever
(as a kernel stuck in a native loop), and one containing ``C128k3`` exits the interpreter at once.
Every other child trains normally.
"""

from __future__ import annotations

import ctypes
import os
import signal

from torch import nn

from nas_gym.models import build_model as real_build_model

_libc = ctypes.CDLL(None)


class _Faulty(nn.Module):
    def __init__(self, inner: nn.Module, fault: str) -> None:
        super().__init__()
        self.inner, self.fault, self.calls = inner, fault, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == 2:
                if self.fault == "abort":
                    _libc.abort()
                if self.fault == "hang":
                    signal.pthread_sigmask(
                        signal.SIG_BLOCK, set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP}
                    )
                    while True:
                        _libc.sleep(3600)
                if self.fault == "exit":
                    os._exit(3)
        return self.inner(x)


def build_model(arch, in_channels, image_size, num_classes, width=1.0):
    model = real_build_model(arch, in_channels, image_size, num_classes, width)
    text = str(arch)
    fault = (
        "abort" if "C128k5" in text else "hang" if "C128k4" in text else "exit" if "C128k3" in text else ""
    )
    return _Faulty(model, fault) if fault else model
