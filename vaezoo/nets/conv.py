"""Convolutional encoder/decoder pair for 28×28 grey and 32×32 / 64×64 colour images.

The encoder halves the resolution with stride-2 convolutions while the size is even and above 4
(28 -> 14 -> 7, 32 -> 4, 64 -> 4); the decoder mirrors it with transposed convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from vaezoo.nets.grey_upconv import GreyUpConv
from vaezoo.nets.mlp import activation


def num_halvings(size: int, max_halvings: int) -> int:
    n = 0
    while size % 2 == 0 and size > 4 and n < max_halvings:
        size //= 2
        n += 1
    return n


class ConvTrunk(nn.Module):
    """x [B, C, H, W] -> feature map [B, channels[-1], H / 2^n, W / 2^n]."""

    def __init__(self, data_shape: tuple[int, int, int], channels: Sequence[int], act: str = "relu"):
        super().__init__()
        c, h, _ = data_shape
        n = num_halvings(h, len(channels))
        layers: list[nn.Module] = []
        prev = c
        for i, ch in enumerate(channels):
            stride = 2 if i < n else 1
            kernel = 4 if stride == 2 else 3
            layers += [nn.Conv2d(prev, ch, kernel, stride, 1), activation(act)]
            prev = ch
        self.net = nn.Sequential(*layers)
        self.out_shape = (prev, h >> n, data_shape[2] >> n)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvEncoder(nn.Module):
    """Convolutional trunk followed by a dense layer: x -> features [B, hidden]."""

    def __init__(
        self,
        data_shape: tuple[int, int, int],
        channels: Sequence[int] = (32, 64, 128),
        hidden: int = 256,
        act: str = "relu",
    ):
        super().__init__()
        self.trunk = ConvTrunk(data_shape, channels, act)
        c, h, w = self.trunk.out_shape
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), activation(act))
        self.out_features = hidden

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))


class ConvUpTrunk(nn.Module):
    """Feature map [B, channels[0], h, w] -> likelihood parameters [B, out_channels, H, W]."""

    def __init__(
        self, data_shape: tuple[int, int, int], out_channels: int, channels: Sequence[int], act: str = "relu"
    ):
        super().__init__()
        _, h, _ = data_shape
        n = num_halvings(h, len(channels))
        layers: list[nn.Module] = []
        chans = list(channels)
        for i, ch in enumerate(chans):
            nxt = chans[i + 1] if i + 1 < len(chans) else out_channels
            upsample = i >= len(chans) - n
            if not upsample:
                conv: nn.Module = nn.Conv2d(ch, nxt, 3, 1, 1)
            elif nxt == 1:  # a grey image's last layer: oneDNN's slowest on CPUs (grey_upconv.py)
                conv = GreyUpConv(ch)
            else:
                conv = nn.ConvTranspose2d(ch, nxt, 4, 2, 1)
            layers.append(conv)
            if i + 1 < len(chans):
                layers.append(activation(act))
        self.net = nn.Sequential(*layers)
        self.in_shape = (chans[0], h >> n, data_shape[2] >> n)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Dense layer to a small feature map, then transposed convolutions up to the image size."""

    def __init__(
        self,
        in_features: int,
        data_shape: tuple[int, int, int],
        out_channels: int,
        channels: Sequence[int] = (32, 64, 128),
        hidden: int = 256,
        act: str = "relu",
    ):
        super().__init__()
        self.up = ConvUpTrunk(data_shape, out_channels, list(reversed(list(channels))), act)
        c, h, w = self.up.in_shape
        self.fc = nn.Sequential(
            nn.Linear(in_features, hidden), activation(act), nn.Linear(hidden, c * h * w), activation(act)
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.up(self.fc(z).view(-1, *self.up.in_shape))
