"""The training objective, composed once outside the models (see :class:`Objective`)."""

from vaezoo.objective.objective import Objective, ObjectiveOutput, iwae_bound
from vaezoo.objective.schedules import (
    CapacityAnnealing,
    ConstantBeta,
    Cyclical,
    FreeBits,
    KLRegulariser,
    LinearWarmup,
)

__all__ = [
    "CapacityAnnealing",
    "ConstantBeta",
    "Cyclical",
    "FreeBits",
    "KLRegulariser",
    "LinearWarmup",
    "Objective",
    "ObjectiveOutput",
    "iwae_bound",
]
