"""Sampling motion latents: guidance, ODE solvers and the windowed sampler."""

from floatalk.sampling.guidance import GuidedField, guided_velocity
from floatalk.sampling.ode import METHODS, solve, time_grid
from floatalk.sampling.sampler import SamplerSettings, iter_motion_windows, sample_motion

__all__ = [
    "METHODS",
    "GuidedField",
    "SamplerSettings",
    "guided_velocity",
    "iter_motion_windows",
    "sample_motion",
    "solve",
    "time_grid",
]
