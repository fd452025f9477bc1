"""Training curves of one or more runs as a picture (matplotlib, Agg; no window, no pyplot state).

matplotlib is imported by the functions that draw, never by importing this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["curves_figure", "save_curves"]


def curves_figure(curves: Mapping[str, Sequence[tuple[int, float]]], *, metric: str,
                  title: str | None = None) -> Figure:
    """One line per entry of ``curves``, in a figure of its own.

    Args:
        curves: ``{label: [(epoch, value), ...]}``, epochs counted from 1; one line each, in order.
        metric: the name of the values (the y axis label).
        title: the figure's title (default: ``metric``).

    Returns:
        A ``matplotlib.figure.Figure`` with one axes whose ``get_lines()`` are the curves.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, points in curves.items():
        epochs = [epoch for epoch, _ in points]
        values = [value for _, value in points]
        ax.plot(epochs, values, marker="o" if len(points) < 30 else None, markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(fontsize="small")
    return fig


def save_curves(curves: Mapping[str, Sequence[tuple[int, float]]], out: Path, *, metric: str,
                title: str | None = None) -> Path:
    """Draw :func:`curves_figure` and write it to ``out`` (format from the suffix, e.g. ``.png``); return ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    curves_figure(curves, metric=metric, title=title).savefig(out)
    return out
