"""Figures for the report: matplotlib in one style, saved as SVG files beside index.html."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib import mathtext

STYLE = {
    "figure.figsize": (6.4, 3.8),
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "svg.fonttype": "path",
    "svg.hashsalt": "infonorm",  # identical figures give identical files
}
COLORS = plt.get_cmap("tab10").colors


class Figures:
    """Saves figures into `folder`/figures and hands back their paths relative to `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "figures").mkdir(parents=True, exist_ok=True)

    @contextmanager
    def figure(
        self, name: str, *, ncols: int = 1, nrows: int = 1, size: tuple[float, float] | None = None
    ) -> Iterator[tuple[plt.Figure, object]]:
        """A styled figure; it is saved as figures/`name`.svg when the block ends."""
        with plt.rc_context(STYLE):
            figsize = size or (STYLE["figure.figsize"][0] * min(ncols, 2), 3.8 * nrows)
            fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=True)
            try:
                yield fig, axes
                fig.tight_layout()
                fig.savefig(self.folder / self.path(name), format="svg", metadata={"Date": None})
            finally:
                plt.close(fig)

    @staticmethod
    def path(name: str) -> str:
        return f"figures/{name}.svg"

    def equation(self, name: str, latex: str, *, fontsize: float = 13) -> str | None:
        """Render `latex` (mathtext, between $…$) to figures/`name`.svg; None if it won't parse."""
        buffer = io.BytesIO()
        with plt.rc_context({**STYLE, "font.size": fontsize}):
            try:
                mathtext.math_to_image(latex, buffer, format="svg", dpi=100)
            except ValueError:
                return None
        (self.folder / self.path(name)).write_bytes(buffer.getvalue())
        return self.path(name)
