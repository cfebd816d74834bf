"""Real savings from a ticket: linear weights stored sparse (CSR) on disk and in inference.

A pruned weight matrix ``(out, in)`` with sparsity s needs (1 - s) * out * in values plus
as many int32 column indices and out + 1 row pointers in CSR form: at 4 + 4 bytes per kept
entry against 4 per dense one, the file shrinks once s > 50%. Whether CSR matmul beats a
dense GEMM depends on the CPU and the sparsity; ``benchmarks/lottery_sparse.py`` measures it.

Example:
    >>> layer = torch.nn.Linear(64, 32)
    >>> with torch.no_grad():
    ...     _ = layer.weight.mul_(torch.rand(32, 64) > 0.8)   # 80% zeros
    >>> x = torch.rand(3, 64)
    >>> torch.allclose(SparseLinear.from_dense(layer)(x), layer(x), atol=1e-6)
    True
    >>> export_sparse(model, "pruned.safetensors")            # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["SparseLinear", "export_sparse", "load_sparse_state"]


class SparseLinear(nn.Module):
    """``y = x W^T + b`` with ``W`` held as a CSR tensor (inference only, no gradients).

    Args:
        weight: (out, in) CSR tensor.
        bias: (out,) or None.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        super().__init__()
        if weight.layout != torch.sparse_csr:
            raise TypeError(f"weight must be a CSR tensor, got layout {weight.layout}")
        self.weight = weight
        self.bias = bias
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    @classmethod
    def from_dense(cls, layer: nn.Linear) -> SparseLinear:
        """The same layer with its zeros dropped from storage."""
        w = layer.weight.detach().to_sparse_csr()
        return cls(w, None if layer.bias is None else layer.bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, self.in_features)  # (T, in)
        y = torch.sparse.mm(self.weight, flat.T).T  # (T, out)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


def sparse_linear_reference(x: Tensor, layer: SparseLinear) -> Tensor:
    """Naive reference: densify the weight and use F.linear."""
    return nn.functional.linear(x, layer.weight.to_dense(), layer.bias)


def to_sparse(model: nn.Module, *, min_sparsity: float = 0.9) -> list[str]:
    """Swap every ``nn.Linear`` whose weight is at least ``min_sparsity`` zeros for a SparseLinear.

    The default swaps only where CSR comes near a dense GEMM: on a 2-core EPYC with torch's
    CSR kernels a MiniLM layer in CSR is 2-5x slower than dense at 50-70% zeros and about
    level at 90% (``benchmarks/lottery_sparse.py``). Unstructured sparsity below that saves
    file size (``export_sparse``), not time, on such CPUs.

    Returns:
        The names of the swapped modules.
    """
    swapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                zeros = float((child.weight == 0).float().mean())
                if zeros >= min_sparsity:
                    setattr(module, child_name, SparseLinear.from_dense(child))
                    swapped.append(f"{name}.{child_name}" if name else child_name)
    return swapped


def export_sparse(model: nn.Module, path: str | Path, *, min_sparsity: float = 0.5) -> Path:
    """Write the state dict as safetensors, 2-D weights at least ``min_sparsity`` zeros as CSR.

    A CSR weight ``name`` is stored as ``name.crow`` / ``name.col`` (int32) and ``name.values``,
    its shape in the metadata; ``load_sparse_state`` restores the dense state dict.
    """
    from safetensors.torch import save_file

    tensors, shapes = {}, {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        if (
            t.dim() == 2
            and t.is_floating_point()
            and float((t == 0).float().mean()) >= min_sparsity
        ):
            csr = t.to_sparse_csr()
            tensors[f"{name}.crow"] = csr.crow_indices().to(torch.int32)
            tensors[f"{name}.col"] = csr.col_indices().to(torch.int32)
            tensors[f"{name}.values"] = csr.values().contiguous()
            shapes[name] = list(t.shape)
        else:
            tensors[name] = t.contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"csr": json.dumps(shapes)})
    return path


def load_sparse_state(path: str | Path) -> dict[str, Tensor]:
    """The dense state dict back from ``export_sparse``'s file (for ``load_state_dict``)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        shapes = json.loads((f.metadata() or {}).get("csr", "{}"))
    out = {
        k: v
        for k, v in raw.items()
        if not k.endswith((".crow", ".col", ".values")) or k.rsplit(".", 1)[0] not in shapes
    }
    for name, shape in shapes.items():
        out[name] = torch.sparse_csr_tensor(
            raw[f"{name}.crow"].long(),
            raw[f"{name}.col"].long(),
            raw[f"{name}.values"],
            size=shape,
            check_invariants=True,
        ).to_dense()
    return out
