"""The last transposed convolution of a grey-image decoder, as one matrix product on CPUs.

A stride-2, 4×4 transposed convolution to a single output channel (C -> 1, h×w -> 2h×2w) is the
64×64 study model's slowest layer on a CPU: oneDNN runs it at about 5 GFLOP/s, a third of the step
for 3 % of its arithmetic (docs/performance.md). Written as what it is, one product of the weight
(C × 16 taps) with every input position, then for each of the four output phases a sum of four
shifted tap planes, and its backward as the adjoint convolutions oneDNN runs fast, it takes half the
time with the same parameters
(``nn.ConvTranspose2d``'s, so checkpoints do not change). Used only where it wins: CPU tensors,
kernel 4, stride 2, padding 1, one output channel (with three, as colour images have, oneDNN is as
fast); everywhere else the layer is ``nn.ConvTranspose2d`` itself.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Output row 2m + a takes kernel row ky from input row m + d, for (ky, d) in TAPS[a] (columns alike).
TAPS = (((1, 0), (3, -1)), ((0, 1), (2, 0)))


class _GreyUpConv(torch.autograd.Function):
    """y = conv_transpose2d(x, weight, bias, stride=2, padding=1), kernel 4, one output channel.

    Forward: the 16 tap planes in one batched product, then each output phase (row parity a, column
    parity b) as the sum of its four taps' planes shifted by at most one position. Backward: the
    transposed convolution's adjoints, which oneDNN runs fast: the gradient of x is the ordinary
    strided convolution of the output's gradient, the weight's is that convolution's weight gradient.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        x = x.contiguous()
        n, c, h, w = x.shape
        # bmm, not matmul: matmul would fold the batch into rows and copy x transposed to do so.
        taps = torch.bmm(weight.reshape(c, 16).t().expand(n, 16, c), x.view(n, c, h * w)).view(n, 4, 4, h, w)
        y = x.new_zeros(n, h, 2, w, 2)  # [n, row, row parity, column, column parity]
        for a in range(2):
            for b in range(2):
                phase = y[:, :, a, :, b]
                for ky, dy in TAPS[a]:
                    r0, r1 = max(0, -dy), min(h, h - dy)
                    for kx, dx in TAPS[b]:
                        c0, c1 = max(0, -dx), min(w, w - dx)
                        phase[:, r0:r1, c0:c1].add_(taps[:, ky, kx, r0 + dy : r1 + dy, c0 + dx : c1 + dx])
        y = y.view(n, 1, 2 * h, 2 * w)
        if bias is not None:
            y.add_(bias.view(1, 1, 1, 1))
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = nn.functional.conv2d(grad_y, weight, stride=2, padding=1)
        if ctx.needs_input_grad[1]:
            grad_w = nn.grad.conv2d_weight(grad_y, weight.shape, x, stride=2, padding=1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_y.sum().view(1)
        return grad_x, grad_w, grad_b


class GreyUpConv(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(in_channels, 1, 4, 2, 1)`` that runs as one matrix product on CPUs."""

    def __init__(self, in_channels: int, bias: bool = True):
        super().__init__(in_channels, 1, kernel_size=4, stride=2, padding=1, bias=bias)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if x.device.type != "cpu" or output_size is not None or x.dim() != 4:
            return super().forward(x, output_size)
        return _GreyUpConv.apply(x, self.weight, self.bias)
