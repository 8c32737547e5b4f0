"""A picture of an architecture: what ``render_mode="rgb_array"`` returns and videos record.

One box per layer, left to right, coloured by kind (convolution, residual block, pooling,
dropout, the classifier head), each with its token, its settings, the feature map's side after it
and, where the env has measured it, the accuracy of the prefix that ends there. Empty slots up to
``max_layers`` are drawn faintly, so every frame of an env has the same size (a video needs that).

Draws with matplotlib's Agg canvas (no window, no pyplot state), imported when a picture is first
drawn. Imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas_gym.search_space import Architecture

__all__ = ["FRAME_HEIGHT", "draw_architecture", "frame_width"]

FRAME_HEIGHT = 240  # pixels
_SLOT = 92  # pixels per layer slot
_COLOURS = {  # colour-blind-safe (Okabe-Ito)
    "conv": "#56B4E9",
    "residual": "#009E73",
    "pool": "#E69F00",
    "dropout": "#CC79A7",
    "head": "#999999",
}


def frame_width(max_layers: int) -> int:
    """The picture's width in pixels: ``max_layers`` slots and the head."""
    return _SLOT * (max_layers + 1) + 24


def draw_architecture(
    arch: Architecture,
    image_size: int,
    max_layers: int,
    accuracies: Sequence[float | None] = (),
    closed: bool = False,
    title: str = "",
) -> np.ndarray:
    """An ``FRAME_HEIGHT`` x ``frame_width(max_layers)`` x 3 uint8 picture of ``arch``.

    ``accuracies[i]``: the measured accuracy of the prefix of ``i + 1`` layers (None: not
    measured). ``closed``: the episode ended with HEAD, so the head box is drawn solid.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    width = frame_width(max_layers)
    dpi = 100
    fig = Figure(figsize=(width / dpi, FRAME_HEIGHT / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, FRAME_HEIGHT)
    ax.axis("off")
    ax.text(12, FRAME_HEIGHT - 22, title or f"{len(arch)} layers, input {image_size}x{image_size}",
            fontsize=10, weight="bold", va="center")  # fmt: skip
    sizes = arch.spatial_sizes(image_size)
    box_w, box_h, y0 = _SLOT - 12, 112, 58
    for slot in range(max_layers + 1):
        x0 = 12 + slot * _SLOT
        if slot < len(arch):
            kind, detail = arch[slot].label()
            colour, alpha, label = _COLOURS[kind], 0.9, arch[slot].token
            side = sizes[slot]
            lines = [detail, f"-> {side}x{side}" if side else ""]
            acc = accuracies[slot] if slot < len(accuracies) else None
        elif slot == len(arch):
            colour, alpha, label = _COLOURS["head"], 0.9 if closed else 0.35, "HEAD"
            lines = ["pool + linear", ""]
            acc = None
        else:
            colour, alpha, label, lines, acc = "#DDDDDD", 0.35, "", ["", ""], None
        ax.add_patch(FancyBboxPatch((x0, y0), box_w, box_h, boxstyle="round,pad=0,rounding_size=8",
                                    facecolor=colour, edgecolor="#333333", alpha=alpha, linewidth=1))  # fmt: skip
        ax.text(x0 + box_w / 2, y0 + box_h - 22, label, ha="center", va="center", fontsize=10, weight="bold")
        ax.text(x0 + box_w / 2, y0 + box_h / 2 - 4, lines[0], ha="center", va="center", fontsize=7)
        ax.text(x0 + box_w / 2, y0 + 18, lines[1], ha="center", va="center", fontsize=7)
        if acc is not None:
            ax.text(x0 + box_w / 2, y0 - 20, f"{100 * acc:.1f}%", ha="center", va="center", fontsize=9)
        if slot and slot <= len(arch):
            ax.annotate("", xy=(x0, y0 + box_h / 2), xytext=(x0 - 12, y0 + box_h / 2),
                        arrowprops={"arrowstyle": "->", "color": "#333333", "lw": 1})  # fmt: skip
    ax.text(
        12, 14, "below each box: validation accuracy of the prefix ending there", fontsize=7, color="#555555"
    )
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[:, :, :3])
