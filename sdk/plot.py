"""``plot_beta``: a grounding's temporal attention β over the video's frames, with the chosen segment.

matplotlib is optional (the ``plot`` extra) and imported only here, on call.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from vrgv.errors import ConfigError
from vrgv.grounding import Grounding


def _pyplot(headless: bool) -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "plotting needs matplotlib, which is not installed; install it with `pip install 'vrgv[plot]'`"
        ) from None
    if headless:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_beta(
    grounding: Grounding | Sequence[Grounding],
    path: str | os.PathLike | None = None,
    *,
    sigma: float | None = None,
    ax: Any = None,
    title: str | None = None,
    ylabel: str = "β = β₁ + β₂",
) -> Any:
    """Plot β (per sampled frame) against the real frame id, shade the segment, mark ``sigma``.

    Several groundings share one axis. Saves to ``path`` when given (PNG/PDF/SVG by suffix) and
    returns the matplotlib Figure.
    """
    items = [grounding] if isinstance(grounding, Grounding) else list(grounding)
    if not items:
        raise ConfigError("plot_beta needs at least one grounding")
    missing = [str(g.relation) for g in items if g.beta is None]
    if missing:
        raise ConfigError(
            f"grounding(s) {missing} carry no β; plot results straight from Grounder.ground(), or JSON written "
            f"with to_json(include_attention=True)"
        )
    plt = _pyplot(headless=path is not None and ax is None)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 2.2 + 0.35 * len(items)), dpi=110)
    else:
        fig = ax.figure
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for k, g in enumerate(items):
        c = colors[k % len(colors)]
        fids = np.asarray(g.beta_frame_ids, dtype=np.float64)
        ax.plot(fids, g.beta, color=c, lw=1.6, label=f"{g.relation}  β")
        ax.axvspan(g.start_fid, g.end_fid, color=c, alpha=0.15,
                   label=f"segment [{g.start_fid}, {g.end_fid}]" + (" (fallback)" if g.fallback else ""))
    if sigma is not None:
        ax.axhline(float(sigma), color="0.4", ls="--", lw=1, label=f"σ = {sigma:g}")
    ax.set_xlabel("frame")
    ax.set_ylabel(ylabel)
    ax.set_title(title or (f"{items[0].video_id}: temporal attention" if len(items) > 1 else f"{items[0].video_id}: {items[0].relation}"))
    ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
    return fig
