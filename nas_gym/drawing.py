"""A picture of an architecture: what ``render_mode="rgb_array"`` returns and videos record.

One box per layer, left to right, coloured by kind (convolution, residual block, pooling,
dropout, the classifier head), each with its token, its settings, the feature map's side after it
and, where the env has measured it, the accuracy of the prefix that ends there. Empty slots up to
``max_layers`` are drawn faintly, so every frame of an env has the same size (a video needs that).

Draws with Pillow (which matplotlib installs) in matplotlib's DejaVu fonts: the empty frame of
each width is drawn once and kept, each frame adds its boxes and labels (a few milliseconds), so
video recording costs little beside the steps. Imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

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
    from PIL import ImageDraw

    image = _blank(max_layers).copy()
    draw = ImageDraw.Draw(image)
    bold = _font(True, 10)
    small, acc_font = _font(False, 7), _font(False, 9)
    draw.text((12, 22), title or f"{len(arch)} layers, input {image_size}x{image_size}", font=_font(True, 10),
              fill="black", anchor="lm")  # fmt: skip
    sizes = arch.spatial_sizes(image_size)
    for slot in range(min(len(arch) + 1, max_layers + 1)):
        x0 = 12 + slot * _SLOT
        if slot < len(arch):
            kind, detail = arch[slot].label()
            colour, alpha, label = _COLOURS[kind], 0.9, arch[slot].token
            side = sizes[slot]
            lines = [detail, f"-> {side}x{side}" if side else ""]
            acc = accuracies[slot] if slot < len(accuracies) else None
        else:
            colour, alpha, label = _COLOURS["head"], 0.9 if closed else 0.35, "HEAD"
            lines, acc = ["pool + linear", ""], None
        _box(draw, x0, colour, alpha)
        cx = x0 + _BOX_W / 2
        draw.text((cx, _y(_Y0 + _BOX_H - 22)), label, font=bold, fill="black", anchor="mm")
        draw.text((cx, _y(_Y0 + _BOX_H / 2 - 4)), lines[0], font=small, fill="black", anchor="mm")
        draw.text((cx, _y(_Y0 + 18)), lines[1], font=small, fill="black", anchor="mm")
        if acc is not None:
            draw.text((cx, _y(_Y0 - 20)), f"{100 * acc:.1f}%", font=acc_font, fill="black", anchor="mm")
        if slot:
            _arrow(draw, x0)
    return np.asarray(image)


_BOX_W, _BOX_H, _Y0 = _SLOT - 12, 112, 58  # a box's size and its lower edge (from the bottom)


def _y(y_up: float) -> float:
    """A height above the bottom edge as Pillow's row (it counts from the top)."""
    return FRAME_HEIGHT - y_up


def _blend(colour: str, alpha: float) -> tuple[int, int, int]:
    """``colour`` at ``alpha`` over the white background."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return tuple(round(alpha * c + (1 - alpha) * 255) for c in rgb)  # type: ignore[return-value]


def _box(draw: Any, x0: float, colour: str, alpha: float) -> None:
    top, bottom = _y(_Y0 + _BOX_H), _y(_Y0)
    draw.rounded_rectangle((x0, top, x0 + _BOX_W, bottom), radius=8, fill=_blend(colour, alpha),
                           outline=_blend("#333333", alpha), width=1)  # fmt: skip


def _arrow(draw: Any, x0: float) -> None:
    y = _y(_Y0 + _BOX_H / 2)
    draw.line((x0 - 12, y, x0 - 1, y), fill="#333333", width=1)
    draw.polygon([(x0, y), (x0 - 5, y - 3), (x0 - 5, y + 3)], fill="#333333")


@lru_cache(maxsize=8)
def _font(bold: bool, size: int) -> Any:
    """matplotlib's DejaVu Sans (what the pictures were drawn in before), else Pillow's own."""
    from PIL import ImageFont

    try:
        import matplotlib

        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        # points at 100 dpi, as the matplotlib figure had
        return ImageFont.truetype(f"{matplotlib.get_data_path()}/fonts/ttf/{name}", round(size * 100 / 72))
    except (ImportError, OSError):
        return ImageFont.load_default(round(size * 100 / 72))


@lru_cache(maxsize=16)
def _blank(max_layers: int) -> Any:
    """The frame without an architecture: white, the empty slots, the footnote (drawn once)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (frame_width(max_layers), FRAME_HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    for slot in range(max_layers + 1):
        _box(draw, 12 + slot * _SLOT, "#DDDDDD", 0.35)
    draw.text((12, _y(14)), "below each box: validation accuracy of the prefix ending there", font=_font(False, 7),
              fill="#555555", anchor="lm")  # fmt: skip
    return image
