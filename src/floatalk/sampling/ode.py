"""Fixed-grid ODE integration from t = 0 to 1 through torchdiffeq.

`nfe` keeps the release's meaning for Euler: the time grid is linspace(0, 1, nfe), so nfe = 10
is 9 Euler steps and 9 velocity evaluations. The other methods get the same budget of
nfe - 1 evaluations: midpoint (2 per step) takes max(1, (nfe - 1) // 2) steps, RK4 (4 per
step, torchdiffeq's 3/8 rule) max(1, (nfe - 1) // 4) steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torchdiffeq import odeint

from floatalk.config import ODE_METHODS

METHODS: dict[str, int] = dict(zip(ODE_METHODS, (1, 2, 4)))
"""Solver name -> velocity evaluations per step."""


def num_steps(method: str, nfe: int) -> int:
    """Steps that fit the budget of nfe - 1 velocity evaluations (at least one step)."""
    if method not in METHODS:
        raise ValueError(f"unknown ODE method {method!r}; choose one of: {', '.join(METHODS)}")
    if nfe < 2:
        raise ValueError(f"nfe must be at least 2 (got {nfe})")
    return max(1, (nfe - 1) // METHODS[method])


def time_grid(method: str, nfe: int) -> Tensor:
    """The float32 integration grid from 0 to 1: (steps + 1,)."""
    return torch.linspace(0.0, 1.0, num_steps(method, nfe) + 1)


def solve(field: Callable[[Tensor, Tensor], Tensor], x0: Tensor, method: str = "euler", nfe: int = 10) -> Tensor:
    """Integrate dx/dt = field(t, x) from x(0) = x0 to t = 1; returns x(1) with x0's shape."""
    grid = time_grid(method, nfe).to(x0.device)
    return odeint(field, x0, grid, method=method)[-1]
