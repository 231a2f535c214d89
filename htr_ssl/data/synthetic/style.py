"""A writer's handwriting style: the parameters that stay fixed across all their forms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WriterStyle:
    """Geometry and ink of one synthetic writer. Lengths are in font units (a Hershey
    capital is about 21 units tall) unless they say px; the renderer scales to pixels."""

    font: str  # Hershey font name or a TTF/OTF path
    slant: float  # shear: x += slant * height above the baseline (positive leans right)
    stroke_px: float  # pen width as a fraction of the line height in px
    x_scale: float  # horizontal stretch of every glyph
    size: float  # overall glyph size relative to the nominal line height
    letter_spacing: float  # extra gap between glyphs (units, may be negative: tighter)
    word_spacing: float  # gap between words (units)
    ascender_scale: float  # stretch of the part above the x-height
    descender_scale: float  # stretch of the part below the baseline
    drift_amp: float  # baseline wave amplitude (units)
    drift_period: float  # baseline wave period (units)
    tilt: float  # baseline slope (units per unit)
    glyph_jitter: float  # std of each glyph's random offset (units)
    glyph_scale_jitter: float  # std of each glyph's relative size change
    ink: int  # gray level of the ink (0 black)
    paper: int  # gray level of the paper
    noise: float  # std of the paper noise (gray levels)
    blur: float  # Gaussian blur sigma (px)


def sample_style(
    rng: np.random.Generator, fonts: Sequence[tuple[str, float]]
) -> WriterStyle:
    """Draw one writer's style; `fonts` are (font, weight) pairs."""
    names = [f for f, _ in fonts]
    weights = np.array([w for _, w in fonts], dtype=np.float64)
    font = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    u = rng.uniform
    return WriterStyle(
        font=font,
        slant=float(np.clip(rng.normal(0.18, 0.15), -0.2, 0.55)),
        stroke_px=float(u(0.022, 0.055)),
        x_scale=float(u(0.78, 1.25)),
        size=float(u(0.85, 1.1)),
        letter_spacing=float(u(-1.5, 2.0)),
        word_spacing=float(u(9.0, 18.0)),
        ascender_scale=float(u(0.75, 1.3)),
        descender_scale=float(u(0.7, 1.3)),
        drift_amp=float(u(0.0, 2.5)),
        drift_period=float(u(250.0, 900.0)),
        tilt=float(rng.normal(0.0, 0.006)),
        glyph_jitter=float(u(0.1, 0.9)),
        glyph_scale_jitter=float(u(0.0, 0.08)),
        ink=int(u(5, 90)),
        paper=int(u(215, 252)),
        noise=float(u(1.0, 7.0)),
        blur=float(u(0.3, 0.9)),
    )
