"""Encoder and decoder building blocks shared by the models, chosen by config (``net.kind``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from vaezoo.errors import ConfigError
from vaezoo.nets.conv import ConvDecoder, ConvEncoder
from vaezoo.nets.mlp import MLPDecoder, MLPEncoder

__all__ = ["ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder", "build_decoder", "build_encoder"]

_KINDS = ("mlp", "conv")


def _split(net: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    params = dict(net)
    kind = params.pop("kind", "mlp")
    if kind not in _KINDS:
        raise ConfigError(f"unknown model.net.kind={kind!r}; choose one of {', '.join(_KINDS)}")
    return kind, params


def build_encoder(net: Mapping[str, Any], data_shape: tuple[int, int, int]) -> nn.Module:
    """An encoder trunk x [B, C, H, W] -> features [B, out_features]."""
    kind, params = _split(net)
    cls = MLPEncoder if kind == "mlp" else ConvEncoder
    return cls(data_shape, **params)


def build_decoder(
    net: Mapping[str, Any], in_features: int, data_shape: tuple[int, int, int], out_channels: int
) -> nn.Module:
    """A decoder z [B, in_features] -> likelihood parameters [B, out_channels, H, W]."""
    kind, params = _split(net)
    cls = MLPDecoder if kind == "mlp" else ConvDecoder
    return cls(in_features, data_shape, out_channels, **params)
