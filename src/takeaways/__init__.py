"""takeaways: ten NeurIPS 2020 results as PyTorch tools, recipes and benchmarks."""

__version__ = "0.1.0"
