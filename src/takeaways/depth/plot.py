"""A plot of the depth regimes with a query's shapes and the known models marked (arXiv 2006.12467)."""

from __future__ import annotations

from takeaways.depth.presets import KNOWN_MODELS
from takeaways.depth.shapes import Suggestion
from takeaways.depth.theory import depth_threshold, fit_depth

__all__ = ["save_regime_plot"]


def save_regime_plot(suggestion: Suggestion, path: str) -> str:
    """Draw the regimes in the (width, depth) plane with the query's shapes and the known models.

    The threshold curve ``depth = log3(width)`` splits depth-efficient (below) from
    depth-inefficient (above); the fitted optimum ``depth = (ln width - 5.039) / 0.0555``
    is drawn too. Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = [2 ** (k / 8) for k in range(8 * 4, 8 * 16 + 1)]  # 16 .. 65536
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=110)
    ax.plot(
        widths, [depth_threshold(w) for w in widths], "k-", label="threshold depth = log3(width)"
    )
    fit = [(w, fit_depth(w)) for w in widths if fit_depth(w) >= 1]
    ax.plot(
        [w for w, _ in fit],
        [d for _, d in fit],
        "b--",
        label="paper's fit: ln w = 5.039 + 0.0555 L",
    )
    ax.fill_between(
        widths, 0.8, [depth_threshold(w) for w in widths], color="0.9", label="depth-efficient"
    )
    for name, m in KNOWN_MODELS.items():
        ax.plot(m.width, m.depth, "o", color="tab:orange", ms=4)
        ax.annotate(name, (m.width, m.depth), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.plot(
        [o.width for o in suggestion.options],
        [o.depth for o in suggestion.options],
        "s",
        color="tab:green",
        ms=4,
        label=f"options: {suggestion.query}",
    )
    if suggestion.fitted is not None:
        ax.plot(
            suggestion.fitted.width,
            suggestion.fitted.depth,
            "*",
            color="tab:red",
            ms=11,
            label="fitted optimum",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width d_x")
    ax.set_ylabel("depth L")
    ax.set_title("Self-attention depth regimes (Levine et al., arXiv 2006.12467)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
