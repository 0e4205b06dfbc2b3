"""Fixed-grid ODE integration from t = 0 to 1: Euler here, midpoint and RK4 through torchdiffeq.

`nfe` keeps the release's meaning for Euler: the time grid is linspace(0, 1, nfe), so nfe = 10
is 9 Euler steps and 9 velocity evaluations. The other methods get the same budget of
nfe - 1 evaluations: midpoint (2 per step) takes max(1, (nfe - 1) // 2) steps, RK4 (4 per
step, torchdiffeq's 3/8 rule) max(1, (nfe - 1) // 4) steps.

Euler, the default, is written out here with torchdiffeq's exact operations (the same tensors
multiplied and added in the same order, so the same bits): importing torchdiffeq imports
scipy.integrate, about 0.3 s of start-up that the default path does not need.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

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
    if method == "euler":
        return euler(field, x0, grid)
    from torchdiffeq import odeint

    return odeint(field, x0, grid, method=method)[-1]


def euler(field: Callable[[Tensor, Tensor], Tensor], x0: Tensor, grid: Tensor) -> Tensor:
    """Euler steps over `grid` (K,) float32 from x0 (any shape) -> x at grid[-1], x0's shape and dtype.

    torchdiffeq's fixed-grid Euler, operation for operation: the field sees t cast to x's dtype,
    each step adds dt * f with dt = t1 - t0 a float32 0-d tensor (bit-identical results)."""
    x = x0
    for t0, t1 in zip(grid[:-1], grid[1:]):
        x = x + (t1 - t0) * field(t0.to(x.abs().dtype), x)
    return x
