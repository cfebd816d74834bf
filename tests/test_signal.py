"""nn.SignalCNN: output shapes for any signal length, both input layouts, every parameter learns."""

from __future__ import annotations

import pytest
import torch

from takeaways.nn import SignalCNN


@pytest.mark.parametrize("length", [8, 40, 41, 257])
def test_signal_cnn_shapes_and_gradients(length):
    torch.manual_seed(0)
    model = SignalCNN(length, 7, width=16)
    x = torch.randn(8, length)
    out = model(x)
    assert out.shape == (8, 7)
    torch.testing.assert_close(model(x[:, None, :]), out)  # (N, 1, L) reads the same
    (out * torch.randn_like(out)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert model.head.in_features == 16 * -(-length // 8)  # three stride-2 layers: ceil(L / 8)
