"""Training curves of one or more runs as a picture (matplotlib, Agg; no window, no pyplot state).

matplotlib is imported by the functions that draw, never by importing this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["curves_figure", "save_curves", "save_run_curves"]


def curves_figure(
    curves: Mapping[str, Sequence[tuple[int, float]]], *, metric: str, title: str | None = None
) -> Figure:
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


def save_curves(
    curves: Mapping[str, Sequence[tuple[int, float]]], out: Path, *, metric: str, title: str | None = None
) -> Path:
    """Draw :func:`curves_figure` and write it to ``out`` (format from the suffix, e.g. ``.png``); return ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    curves_figure(curves, metric=metric, title=title).savefig(out)
    return out


def save_run_curves(
    rows: Sequence[Mapping[str, float]], out: Path, *, metrics: Sequence[str], title: str | None = None
) -> Path:
    """One run's ``curves.png``: a panel per metric with its train and validation lines.

    Args:
        rows: ``metrics.csv`` rows as numbers, ``epoch`` counted from 1 (``run_summary.read_metrics``).
        metrics: the names to draw (``loss``, ``miou``, ...); ``NAME`` is the train line and
            ``val_NAME`` the validation line. Names absent from the rows are left out.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    shown = [m for m in metrics if any(m in r or f"val_{m}" in r for r in rows)]
    fig = Figure(figsize=(5 * max(1, len(shown)), 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for k, metric in enumerate(shown, start=1):
        ax = fig.add_subplot(1, len(shown), k)
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            points = [(r["epoch"], r[key]) for r in rows if key in r]
            if points:
                ax.plot(*zip(*points), marker="o" if len(points) < 30 else None, markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    out = Path(out)
    fig.savefig(out)
    return out
