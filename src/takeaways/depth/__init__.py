"""Depth versus width of self-attention: the threshold, a parameter count, a sizing advisor.

Levine, Wies, Sharir, Bata & Shashua, "Limits to Depth Efficiencies of Self-Attention"
(NeurIPS 2020), arXiv 2006.12467; the arXiv v3 of January 2021 is titled "The
Depth-to-Width Interplay in Self-Attention".

Two different numbers come out of that paper, and they are easy to confuse:

1. **The theory's threshold** ``L_th = log3(d_x)`` (``depth_threshold``). Below it, each
   added layer is worth double-exponentially more width (*depth-efficient*). Above it,
   adding depth helps about as much as adding width (*depth-inefficient*). It marks
   where depth stops being special. It does not say that depth should stay below it.
2. **The paper's fitted optimum**: the depth it recommends for a network of a given
   size. The fit is ``ln(d_x) = 5.039 + 0.0555 * L``. It is far deeper than the
   threshold: about 95 layers and width 30K at one trillion parameters.

Where each number comes from (public copies of the abstracts and the authors' posts were
read; the body of the paper, where the fit would sit, was not):

- ``L_th = log3(d_x)``: the abstract of arXiv 2006.12467 v1 ("L_th=log_3(d_x)") and the
  authors' summary post "Is depth useful for self-attention?" (KDnuggets, July 2020,
  first paragraph). The NeurIPS abstract says only that it is logarithmic in the width.
- ``ln(d_x) = 5.039 + 0.0555 L``: quoted from Levine et al. (2020) by the BloombergGPT
  paper (Wu et al., arXiv 2303.17564, section 3.2 "Model Scaling", paragraph "Shape").
  It gives ``D = exp(5.039) exp(0.0555 L)`` as the optimal hidden size for ``L``
  layers, and pairs ``L = 70`` with ``D = 7510``. We could not find the equation's
  place inside arXiv 2006.12467 itself.
- "width of 30K ... optimal for a 1-Trillion parameter network" and "GPT3 ... too deep
  for its size": from the abstract of arXiv 2006.12467 v3. "Depth 92 and width 30K" at
  1T: the authors' blog post (cs.huji.ac.il/~yoavlevine/
  self_attention_depth_vs_width_post.html, "Bottom lines"). The fit above reaches 30K
  at about 95 layers; that ~3% gap is unexplained.
- The paper's experiments covered depths 6 to 48 (v3 abstract). Its per-size table
  of suggested depths and widths for the GPT-3 sizes is on the blog as an image. We
  did not read that image, so no number from it appears here.

Parameter counts (``parameter_count``) follow the standard block with biases:
``(4 + 2 r) d^2 + (9 + r) d`` weights per layer plus two LayerNorms (``r`` = FFN ratio).
This is exact for ``takeaways.nn.TransformerEncoder`` and for the released BERT,
GPT-2 and T5 checkpoints (T5 within 0.001%: its relative-position tables are not
counted). Sizes from the fit use the same count, embeddings included.

The package reads top to bottom: ``theory`` (threshold and fit), ``counting``
(parameter counts), ``presets`` (known models), ``shapes`` (candidate shapes and
solvers, including ``shape_for_budget``: the shape of a given depth that fills a layer
budget, which the ``depth`` recipe sweeps), ``advisor`` (``suggest_architecture``),
``plot``. Every name is importable from here; the modules share only public names.
``sweep`` (the language model, task and sweep summary the ``depth`` recipe trains and reads;
it imports torch) is imported on its own, as ``takeaways.depth.sweep``.

Example:
    >>> round(depth_threshold(768), 2)
    6.05
    >>> parameter_count(12, 768, vocab=30522, type_vocab=2, head="pooler")  # BERT-base
    109482240
    >>> s = suggest_architecture(model="gpt3-175b")
    >>> s.model.regime, s.fitted.depth < 96
    ('depth-inefficient', True)
"""

# Everything below is importable as takeaways.depth.X (the CLI, recipe and tests rely on it).
from takeaways.depth.advisor import suggest_architecture  # noqa: F401
from takeaways.depth.counting import (  # noqa: F401
    Conventions,
    human_count,
    parameter_count,
    parse_count,
)
from takeaways.depth.plot import save_regime_plot  # noqa: F401
from takeaways.depth.presets import KNOWN_MODELS  # noqa: F401
from takeaways.depth.shapes import (  # noqa: F401
    Option,
    Suggestion,
    fitted_for_budget,
    shape_for_budget,
    shape_for_total,
    threshold_for_budget,
)
from takeaways.depth.theory import (  # noqa: F401
    FIT_INTERCEPT,
    FIT_SLOPE,
    PAPER_DEPTHS,
    check_positive,
    depth_threshold,
    fit_depth,
    fit_width,
)

__all__ = ["depth_threshold", "parameter_count", "shape_for_budget", "suggest_architecture"]
