"""Figures for the report: matplotlib in one style, one SVG file per panel, numbered.

Each panel is its own file so that a phone shows one panel across the screen rather than
three side by side at a third of their size; the page lays panels out in a grid that
reflows. Legends shared by the panels of a figure are written in HTML under them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

from infonorm.quiz.report.latex import prose

STYLE = {
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "mathtext.fontset": "dejavusans",
    "svg.fonttype": "path",
    "svg.hashsalt": "infonorm",  # identical figures give identical files
}
# one panel: about 460 px wide, so that a phone shows it at 80% of its size or more
PANEL = (4.8, 3.4)
COLORS = [to_hex(c) for c in plt.get_cmap("tab10").colors]


@dataclass(frozen=True)
class Key:
    """One entry of an HTML legend: a color, how it is drawn, its label ($…$ allowed)."""

    color: str
    label: str
    mark: str = "line"  # "line", "dot", "dash", "hollow" or "bar"


class Figures:
    """Saves panels into `folder`/figures, numbers figures in the order they are placed and
    remembers which claims each one illustrates."""

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "figures").mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.of_claim: dict[str, list[tuple[int, str]]] = {}

    @contextmanager
    def panel(self, name: str, size: tuple[float, float] = PANEL) -> Iterator[plt.Axes]:
        """One styled panel, saved as figures/`name`.svg when the block ends."""
        with plt.rc_context(STYLE):
            fig, ax = plt.subplots(figsize=size)
            try:
                yield ax
                # the saved file is cropped to what is drawn ("savefig.bbox": "tight")
                fig.savefig(self.folder / self.path(name), format="svg", metadata={"Date": None})
            finally:
                plt.close(fig)

    @staticmethod
    def path(name: str) -> str:
        return f"figures/{name}.svg"

    def block(
        self,
        name: str,
        panels: Sequence[str],
        caption: str,
        *,
        claims: Sequence[str] = (),
        keys: Sequence[Key] = (),
        alt: str = "",
    ) -> str:
        """The next numbered figure: its panels, a legend, the caption ($…$ typeset)."""
        self.count += 1
        anchor = f"fig-{name}"
        for claim in claims:
            self.of_claim.setdefault(claim, []).append((self.count, anchor))
        images = "".join(
            f"<img src='{escape(self.path(p))}' alt='{escape(alt or name)}, panel {k + 1}'>"
            for k, p in enumerate(panels)
        )
        columns = "one" if len(panels) == 1 else "many"
        return (
            f"<figure id='{anchor}'><div class='panels {columns}'>{images}</div>"
            f"{legend(keys)}<figcaption><b>Figure {self.count}.</b> {prose(caption)}"
            "</figcaption></figure>"
        )


def legend(keys: Sequence[Key]) -> str:
    if not keys:
        return ""
    items = "".join(
        f"<li><span class='key {escape(k.mark)}' style='--c:{escape(k.color)}'></span>"
        f"{prose(k.label)}</li>"
        for k in keys
    )
    return f"<ul class='legend'>{items}</ul>"
