"""Small image, signal and vector classifiers: plain CNNs (2-D and 1-D), a small ResNet, an MLP.

All map a batch to logits ``(B, K)``: ``SmallCNN`` and ``SmallResNet`` take images
``(B, C, H, W)`` of any size (adaptive pooling at the end), ``SmallCNN1d`` takes 1-D signals
``(B, L)`` or ``(B, 1, L)``, ``MLP`` flattens whatever it gets.

``SmallCNN`` has no BatchNorm by default. Batch statistics differ between one process and
several data-parallel processes, so a BatchNorm-free model trains identically under
``torchrun`` and alone; pass ``norm="group"`` (batch-independent) or ``norm="batch"`` if wanted.

Example:
    >>> SmallCNN(image_size=8)(torch.rand(4, 1, 8, 8)).shape
    torch.Size([4, 10])
"""

from __future__ import annotations

import math

from torch import Tensor, nn

__all__ = ["MLP", "SmallCNN", "SmallCNN1d", "SmallResNet"]

_NORMS = ("batch", "group", None)


def _norm(kind: str | None, channels: int) -> nn.Module:
    """A normalization layer for ``channels`` feature maps, or Identity for ``None``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)  # up to 8 groups that divide C
    return nn.Identity()


def _check_norm(norm: str | None) -> None:
    if norm not in _NORMS:
        raise ValueError(f"unknown norm {norm!r}; known: 'batch', 'group', None")


def _check_image(x: Tensor, in_channels: int, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"{name} expects images (B, {in_channels}, H, W), got shape {tuple(x.shape)}; "
            "add a channel axis with x.unsqueeze(1) or set in_channels"
        )


class SmallCNN(nn.Module):
    """Three 3x3 conv blocks, then a linear classifier on a 2x2 adaptive pool.

    A block pools 2x only while the feature map is at least 8 pixels wide, so 8x8 digits keep
    a 4x4 map and 28x28 MNIST goes 28 -> 14 -> 7; the adaptive pool makes any size work.

    Args:
        in_channels: image channels ``C``.
        num_classes: number of logits ``K``.
        width: channels of the first block (the later blocks use ``2 * width``).
        image_size: the expected side length ``H``; sets where the model downsamples.
        norm: ``None`` (default), ``"batch"`` or ``"group"`` after each conv.
        dropout: dropout before the classifier.

    Raises:
        ValueError: for an unknown ``norm`` or a non-positive size.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        width: int = 32,
        image_size: int = 28,
        *,
        norm: str | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("width", width),
            ("image_size", image_size),
        ):
            if value < 1:
                raise ValueError(f"SmallCNN {name} must be positive, got {value}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        size, c_in = image_size, in_channels
        for c_out in (width, 2 * width, 2 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), _norm(norm, c_out), nn.ReLU()]
            if size >= 8:  # downsample big maps only; a tiny map has no pixels to spare
                layers.append(nn.MaxPool2d(2))
                size //= 2
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(2)  # keeps a little layout, fixes the head's size
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * c_in, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``(B, C, H, W)`` to logits ``(B, K)``."""
        _check_image(x, self.in_channels, "SmallCNN")
        h = self.features(x)  # (B, 2w, H', W')
        return self.head(self.pool(h))  # (B, K)


class _AddChannel(nn.Module):
    """(B, L) -> (B, 1, L); a (B, C, L) input passes through."""

    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(1) if x.dim() == 2 else x


class SmallCNN1d(nn.Module):
    """The 1-D counterpart of SmallCNN: three conv blocks, adaptive pool, linear head.

    Kernel 5 convolutions of ``width``, ``2 * width``, ``2 * width`` channels, the first two
    followed by a 2x max-pool, then a 2-wide adaptive average pool and a linear classifier.
    ``features`` / ``pool`` / ``head`` are laid out as in SmallCNN, so the same encoder split
    (``nn.Sequential(m.features, m.pool, nn.Flatten())``) serves both.

    Args:
        num_classes: number of logits ``K``.
        width: channels of the first block (the later blocks use ``2 * width``).

    Raises:
        ValueError: for a non-positive size.

    Example:
        >>> SmallCNN1d(width=8)(torch.rand(4, 40)).shape
        torch.Size([4, 10])
    """

    def __init__(self, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        if num_classes < 1 or width < 1:
            raise ValueError(
                f"SmallCNN1d num_classes and width must be positive, got {num_classes}, {width}"
            )
        w = width
        self.features = nn.Sequential(
            _AddChannel(),
            nn.Conv1d(1, w, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(w, 2 * w, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(2 * w, 2 * w, 5, padding=2),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool1d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """Map signals ``(B, L)`` or ``(B, 1, L)`` to logits ``(B, K)``."""
        if x.dim() not in (2, 3) or (x.dim() == 3 and x.shape[1] != 1):
            raise ValueError(
                f"SmallCNN1d expects signals (B, L) or (B, 1, L), got shape {tuple(x.shape)}"
            )
        h = self.features(x)  # (B, 2w, L // 4)
        return self.head(self.pool(h))  # (B, K)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with a shortcut (arXiv 1512.03385).

    Args:
        c_in: input channels.
        c_out: output channels.
        stride: 2 halves the map; the shortcut then uses a strided 1x1 conv.
        norm: ``"batch"``, ``"group"`` or ``None``.
    """

    def __init__(self, c_in: int, c_out: int, *, stride: int = 1, norm: str | None = "batch"):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _norm(norm, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = _norm(norm, c_out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:  # shapes differ: project the input to match
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), _norm(norm, c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(B, c_in, H, W) -> (B, c_out, H / stride, W / stride)``."""
        h = self.relu(self.norm1(self.conv1(x)))  # (B, c_out, H', W')
        h = self.norm2(self.conv2(h))  # (B, c_out, H', W')
        return self.relu(h + self.shortcut(x))  # (B, c_out, H', W')


class SmallResNet(nn.Module):
    """A CIFAR-style ResNet: a 3x3 stem, three stages of BasicBlocks, global average pool.

    Args:
        in_channels: image channels ``C``.
        num_classes: number of logits ``K``.
        width: channels of the first stage (then ``2 * width`` and ``4 * width``).
        blocks: BasicBlocks per stage; stages 2 and 3 halve the map.
        norm: ``"batch"`` (default), ``"group"`` or ``None``.

    Raises:
        ValueError: for an unknown ``norm`` or an empty ``blocks``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        width: int = 16,
        *,
        blocks: tuple[int, ...] = (1, 1, 1),
        norm: str | None = "batch",
    ) -> None:
        super().__init__()
        _check_norm(norm)
        if not blocks or min(blocks) < 1:
            raise ValueError(f"blocks must be a non-empty tuple of positive ints, got {blocks}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), _norm(norm, width), nn.ReLU()
        )
        stages: list[nn.Module] = []
        c_in = width
        for i, n in enumerate(blocks):
            c_out = width * 2**i
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(BasicBlock(c_in, c_out, stride=stride, norm=norm))
                c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``(B, C, H, W)`` to logits ``(B, K)``."""
        _check_image(x, self.in_channels, "SmallResNet")
        h = self.stages(self.stem(x))  # (B, 4w, H / 4, W / 4)
        return self.head(self.pool(h).flatten(1))  # (B, K)


class MLP(nn.Module):
    """Flatten, then Linear + ReLU (+ dropout) per hidden size, then a linear classifier.

    Args:
        in_features: size of one flattened input, e.g. 64 for 8x8 images or L for signals.
        num_classes: number of logits ``K``.
        hidden: hidden layer widths; ``()`` gives logistic regression.
        dropout: dropout after each hidden ReLU.

    Raises:
        ValueError: if a size is not positive, or (in forward) the input has the wrong size.

    Example:
        >>> MLP(64, 10)(torch.rand(5, 1, 8, 8)).shape
        torch.Size([5, 10])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: tuple[int, ...] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 1 or any(h < 1 for h in hidden):
            raise ValueError(
                f"MLP sizes must be positive, got in_features={in_features}, "
                f"num_classes={num_classes}, hidden={hidden}"
            )
        self.in_features = in_features
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(B, ...)`` with ``in_features`` values per sample to logits ``(B, K)``."""
        x = x.flatten(1)  # (B, F)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"MLP expects {self.in_features} features per sample, got {x.shape[1]}; "
                "set in_features to the flattened input size"
            )
        return self.net(x)  # (B, K)
