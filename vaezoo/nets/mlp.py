"""Fully connected encoder/decoder pair (Kingma & Welling 2014 use 784-400-20)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import Tensor, nn


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "tanh": nn.Tanh(), "elu": nn.ELU(), "gelu": nn.GELU(), "silu": nn.SiLU()}[name]


def mlp(sizes: Sequence[int], act: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation(act))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Flattens the image and maps it through hidden layers; the last hidden layer is the output."""

    def __init__(self, data_shape: tuple[int, int, int], hidden: Sequence[int] = (400,), act: str = "relu"):
        super().__init__()
        c, h, w = data_shape
        self.net = nn.Sequential(mlp([c * h * w, *hidden], act), activation(act))
        self.out_features = hidden[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """Maps a latent vector through hidden layers to likelihood parameters in image layout."""

    def __init__(
        self,
        in_features: int,
        data_shape: tuple[int, int, int],
        out_channels: int,
        hidden: Sequence[int] = (400,),
        act: str = "relu",
    ):
        super().__init__()
        _, h, w = data_shape
        self.out_shape = (out_channels, h, w)
        self.net = mlp([in_features, *reversed(list(hidden)), out_channels * h * w], act)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.out_shape)
