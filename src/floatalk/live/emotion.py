"""The emotion a live session conditions on: a forced one (a one-hot) or, with 'auto', the
speech-emotion estimate of the audio heard so far, refreshed as audio arrives and smoothed.

Letters: K emotions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from floatalk.engine import FloatEngine

__all__ = ["EmotionTracker"]


class EmotionTracker:
    """Holds the emotion vector (1, 1, K) of a live session.

    With 'auto', the estimate is the emotion encoder's over the last `window_s` seconds heard,
    computed again each time `every_s` more seconds have been heard, and blended into the
    previous estimate with weight `smoothing` (the first estimate is taken as it is). A forced
    emotion replaces it until `set('auto')`.
    """

    def __init__(
        self,
        engine: FloatEngine,
        emotion: str | None,
        window_s: float = 10.0,
        every_s: float = 1.0,
        smoothing: float = 0.5,
    ) -> None:
        self.engine = engine
        self.window = int(window_s * engine.sample_rate)
        self.every = int(every_s * engine.sample_rate)
        self.smoothing = smoothing
        self.forced: Tensor | None = None
        self.estimate: Tensor | None = None  # (1, 1, K) smoothed auto estimate
        self.estimated_at = 0  # samples heard at the last estimate
        self.set(emotion)

    def set(self, emotion: str | None) -> None:
        """'auto' (or None) follows the speech; an emotion name forces it (a checked name)."""
        auto = emotion is None or emotion == "auto"
        self.forced = None if auto else self.engine.encode_emotion(np.zeros(1, np.float32), emotion)

    def vector(self, recent: np.ndarray, heard: int) -> Tensor:
        """The emotion to condition on: (1, 1, K). recent: the last samples heard, (>= min(window, heard),)."""
        if self.forced is not None:
            return self.forced
        if self.estimate is None or heard - self.estimated_at >= self.every:
            new = self.engine.encode_emotion(recent[-self.window :], None)
            if self.estimate is None:
                self.estimate = new
            else:
                self.estimate = torch.lerp(self.estimate, new, self.smoothing)
            self.estimated_at = heard
        return self.estimate
