"""Image operations of the AutoAugment search space, on batched tensors (B, C, H, W).

Every operation takes images ``x`` (B, C, H, W) with values in [0, 1], one signed
magnitude per image ``v`` (B,) and two uniform numbers per image ``u`` (B, 2) (only
``cutout`` uses them, for its centre), and returns new images of the same shape.
Geometric operations resample through an affine grid (bilinear, zeros outside), so
they, the colour blends, ``invert`` and ``cutout`` pass gradients to ``x``;
``posterize``, ``solarize`` and ``equalize`` quantize and do not.

Magnitudes follow the AWS search space (Tian et al., arXiv 2009.14737; ranges as
listed in our research notes, §4): a level ``l`` in 0..10 means ``l / 10`` of the
op's largest magnitude, with a random sign for the signed ops:

    shear_x, shear_y       shear factor up to 0.3
    translate_x, _y        shift up to 150/331 of the side
    rotate                 up to 30 degrees
    brightness, contrast,
    sharpness, color       blend factor 1 +- 0.9 (color is a no-op on 1 or 2 channels)
    posterize              8 -> 4 bits
    solarize               threshold 256 -> 0 (on the 0..255 scale)
    cutout                 a zeroed square up to half the image side (not in AWS's space)
    autocontrast, equalize, invert   no magnitude
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_LEVEL = 10


class OpInfo(NamedTuple):
    fn: Callable[[Tensor, Tensor, Tensor], Tensor]  # (x, v, u) -> x'
    max_magnitude: float  # magnitude at level MAX_LEVEL; 0 for ops without one
    signed: bool  # draw the sign of the magnitude at random


def check_images(x: Tensor, where: str) -> None:
    """Raise a one-line error unless ``x`` is a float tensor (B, C, H, W)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where} expects a torch.Tensor (B, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{where} expects images (B, C, H, W), got shape {tuple(x.shape)}; "
            "add a channel axis with x.unsqueeze(1)"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{where} expects float images in [0, 1], got {x.dtype}; use x.float() / 255"
        )


# ----------------------------------------------------------------------------- geometric


def _affine(x: Tensor, theta: Tensor) -> Tensor:
    """Resample ``x`` (B, C, H, W) at ``theta`` (B, 2, 3) applied to output coordinates."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _theta(v: Tensor) -> Tensor:
    theta = torch.zeros(len(v), 2, 3, dtype=torch.float32, device=v.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    return theta


def shear_x(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    """Output pixel (col, row) reads input (col + v * row, row)."""
    theta = _theta(v)
    theta[:, 0, 1] = v * x.shape[2] / x.shape[3]  # pixel shear in normalized coordinates
    return _affine(x, theta)


def shear_y(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    theta = _theta(v)
    theta[:, 1, 0] = v * x.shape[3] / x.shape[2]
    return _affine(x, theta)


def translate_x(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    """Shift right by ``v`` of the width (normalized coordinates span 2)."""
    theta = _theta(v)
    theta[:, 0, 2] = -2.0 * v
    return _affine(x, theta)


def translate_y(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    theta = _theta(v)
    theta[:, 1, 2] = -2.0 * v
    return _affine(x, theta)


def rotate(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    """Rotate by ``v`` degrees about the centre (pixel-true on non-square images)."""
    h, w = x.shape[2], x.shape[3]
    a = v * (math.pi / 180.0)
    theta = _theta(v)
    theta[:, 0, 0] = torch.cos(a)
    theta[:, 0, 1] = -torch.sin(a) * h / w
    theta[:, 1, 0] = torch.sin(a) * w / h
    theta[:, 1, 1] = torch.cos(a)
    return _affine(x, theta)


# ----------------------------------------------------------------------------- colour blends


def _blend(x: Tensor, degenerate: Tensor, v: Tensor) -> Tensor:
    """``degenerate + (1 + v) * (x - degenerate)``, clamped to [0, 1]; v = 0 returns x."""
    f = (1.0 + v).view(-1, 1, 1, 1).to(x.dtype)
    return (degenerate + f * (x - degenerate)).clamp(0.0, 1.0)


def _gray(x: Tensor) -> Tensor:
    """(B, 1, H, W) luminance of RGB, or the channel mean for other channel counts."""
    if x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        return (x * w.view(1, 3, 1, 1)).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def brightness(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    return _blend(x, torch.zeros_like(x), v)


def contrast(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return _blend(x, mean.expand_as(x), v)


def color(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    """Saturation: blend with the grayscale image. A no-op unless C == 3."""
    if x.shape[1] != 3:
        return x
    return _blend(x, _gray(x).expand_as(x), v)


def sharpness(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    """Blend with a 3x3 smoothed copy (centre weight 5 of 13); the border stays as it is."""
    c = x.shape[1]
    k = torch.ones(3, 3, dtype=x.dtype, device=x.device)
    k[1, 1] = 5.0
    k = (k / 13.0).expand(c, 1, 3, 3)
    smooth = x.clone()
    if x.shape[2] > 2 and x.shape[3] > 2:
        smooth[:, :, 1:-1, 1:-1] = F.conv2d(x, k, groups=c)
    return _blend(x, smooth, v)


# ----------------------------------------------------------------------------- quantizing


def _to_uint8(x: Tensor) -> Tensor:
    return (x.clamp(0.0, 1.0) * 255.0).round().long()


def posterize(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    """Drop the ``round(v)`` lowest of 8 bits (v in 0..4)."""
    drop = v.round().long().clamp(0, 8).view(-1, 1, 1, 1)
    mask = (255 >> drop) << drop  # (B, 1, 1, 1)
    return (_to_uint8(x) & mask).to(x.dtype) / 255.0


def solarize(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    """Invert pixels at or above 256 * (1 - v) on the 0..255 scale (v in 0..1)."""
    thr = (256.0 * (1.0 - v)).view(-1, 1, 1, 1)
    return torch.where(x * 255.0 >= thr - 1e-4, 1.0 - x, x)


def equalize(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    """Histogram equalization per image and channel on 256 levels.

    Level q maps to ``round(255 * (cdf(q) - cdf_min) / (N - cdf_min))``; a constant
    channel is left as it is.
    """
    b, c, h, w = x.shape
    q = _to_uint8(x).view(b * c, h * w)
    hist = torch.zeros(b * c, 256, dtype=torch.float64, device=x.device)
    hist.scatter_add_(1, q, torch.ones_like(q, dtype=torch.float64))
    cdf = hist.cumsum(1)  # (BC, 256)
    cdf_min = cdf.gather(1, q.min(1, keepdim=True).values)  # count of the darkest level
    denom = (h * w - cdf_min).clamp_min(1.0)
    lut = ((cdf - cdf_min) / denom * 255.0).round().clamp(0, 255)
    out = lut.gather(1, q).to(x.dtype) / 255.0
    constant = (h * w - cdf_min) == 0  # (BC, 1)
    out = torch.where(constant, x.reshape(b * c, h * w), out)
    return out.view(b, c, h, w)


def autocontrast(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    """Stretch each channel's [min, max] to [0, 1]; a constant channel stays."""
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    span = hi - lo
    out = (x - lo) / span.clamp_min(1e-12)
    return torch.where(span > 0, out, x)


def invert(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    return 1.0 - x


def cutout(x: Tensor, v: Tensor, u: Tensor) -> Tensor:
    """Zero a square of side ``round(v * H)`` centred at ``u`` (fractions of H and W)."""
    b, _, h, w = x.shape
    side = (v * h).round().long().view(b, 1, 1)
    cy = (u[:, 0] * h).long().view(b, 1, 1)
    cx = (u[:, 1] * w).long().view(b, 1, 1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    y0, x0 = cy - side // 2, cx - side // 2
    inside = (rows >= y0) & (rows < y0 + side) & (cols >= x0) & (cols < x0 + side)  # (B, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


# name -> (function, largest magnitude, signed)
OPS: dict[str, OpInfo] = {
    "shear_x": OpInfo(shear_x, 0.3, True),
    "shear_y": OpInfo(shear_y, 0.3, True),
    "translate_x": OpInfo(translate_x, 150 / 331, True),
    "translate_y": OpInfo(translate_y, 150 / 331, True),
    "rotate": OpInfo(rotate, 30.0, True),
    "brightness": OpInfo(brightness, 0.9, True),
    "contrast": OpInfo(contrast, 0.9, True),
    "sharpness": OpInfo(sharpness, 0.9, True),
    "color": OpInfo(color, 0.9, True),
    "posterize": OpInfo(posterize, 4.0, False),
    "solarize": OpInfo(solarize, 1.0, False),
    "cutout": OpInfo(cutout, 0.5, False),
    "autocontrast": OpInfo(autocontrast, 0.0, False),
    "equalize": OpInfo(equalize, 0.0, False),
    "invert": OpInfo(invert, 0.0, False),
}
OP_NAMES: tuple[str, ...] = tuple(OPS)


def has_level(name: str) -> bool:
    """Whether the op takes a magnitude level."""
    return OPS[name].max_magnitude > 0


def magnitude(name: str, level: int | Tensor) -> float | Tensor:
    """The unsigned magnitude of ``name`` at ``level`` (0..MAX_LEVEL)."""
    return level / MAX_LEVEL * OPS[name].max_magnitude
