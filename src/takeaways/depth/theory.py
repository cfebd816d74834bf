"""The paper's two numbers: the depth threshold log3(width) and the fitted optimal shape.

Levine et al., arXiv 2006.12467. ``depth_threshold(width)`` is the theory's
regime boundary; ``fit_width`` / ``fit_depth`` are the fitted optimum
``ln(width) = 5.039 + 0.0555 depth``. Where each number comes from is in the
package docstring (``takeaways.depth``) and in the comments below.

Example:
    >>> round(depth_threshold(768), 2)
    6.05
"""

from __future__ import annotations

import math

__all__ = ["check_positive", "depth_threshold", "fit_depth", "fit_width"]

# ln(width) = FIT_INTERCEPT + FIT_SLOPE * depth: the fitted optimal width for a given depth,
# quoted from Levine et al. (2020) in BloombergGPT (arXiv 2303.17564, section 3.2, "Shape").
FIT_INTERCEPT = 5.039
FIT_SLOPE = 0.0555
# Depths the paper trained (arXiv 2006.12467 v3 abstract): "networks of depths 6 to 48".
PAPER_DEPTHS = (6, 48)


def check_positive(name: str, value: object, *, integer: bool = False) -> float:
    """``value`` as a float if it is a finite number > 0 (a whole one if ``integer``).

    The package's one size validator; the messages name ``name``.

    Raises:
        TypeError: for a non-number (``bool`` included).
        ValueError: for a non-positive, non-finite or (``integer``) fractional value.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r:.40}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be a whole number, got {value}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return float(value)


def depth_threshold(width: float) -> float:
    """The depth ``L_th = log3(width)`` where self-attention turns depth-inefficient.

    Levine et al., arXiv 2006.12467: below ``L_th`` a deeper network needs
    double-exponentially more width to be matched by a shallower one; above it,
    depth and width contribute alike. This marks a regime boundary. It is not a
    recommended depth (see ``suggest_architecture`` for the paper's fitted optimum).

    Args:
        width: the hidden size ``d_x`` (> 0).

    Returns:
        ``log(width) / log(3)``, e.g. 6.05 for 768 and 8.57 for 12288.

    Raises:
        ValueError: for a non-positive width. TypeError: for a non-number.
    """
    return math.log(check_positive("width", width)) / math.log(3.0)


def fit_width(depth: float) -> float:
    """The fitted optimal width for ``depth`` layers: ``exp(5.039 + 0.0555 depth)``.

    The fit ``ln(width) = 5.039 + 0.0555 depth`` (Levine et al. 2020, as quoted in
    BloombergGPT, arXiv 2303.17564, sec. 3.2), e.g. ``fit_width(70)`` is about 7510.
    """
    return math.exp(FIT_INTERCEPT + FIT_SLOPE * depth)


def fit_depth(width: float) -> float:
    """The depth the fit pairs with ``width``: ``(ln(width) - 5.039) / 0.0555``.

    The inverse of ``fit_width``; below 1 for widths under about 163, where the fit does
    not apply.
    """
    return (math.log(width) - FIT_INTERCEPT) / FIT_SLOPE
