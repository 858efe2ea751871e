"""The quiz harness, on top of the ops: every claim of Quiz 1 checked against a reference
outside infonorm (`claims`), the training runs they rest on (`experiments`), the HTML report
(`report`), the benchmarks (`bench`) and the command line (`cli`).

This is the only part of infonorm that needs matplotlib, rich, scikit-learn and
latex2mathml; they come with the `report` extra (`pip install 'infonorm[report]'`).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

# what the harness imports beyond the ops' torch, numpy and scipy: (module, distribution)
EXTRA = "report"
REQUIREMENTS = (
    ("matplotlib", "matplotlib"),
    ("rich", "rich"),
    ("sklearn", "scikit-learn"),
    ("latex2mathml", "latex2mathml"),
)


def missing_requirements() -> list[str]:
    """The distributions of the `report` extra that cannot be imported here."""
    return [dist for module, dist in REQUIREMENTS if importlib.util.find_spec(module) is None]


def main(argv: Sequence[str] | None = None) -> int:
    """The `infonorm` command (`python -m infonorm`; the `infonorm` script enters through
    `_infonorm_cli`, which catches Ctrl-C during `import infonorm` too). Says in one line
    which extra to install when the harness's requirements are missing, and turns Ctrl-C
    during the harness's imports into one line too."""
    try:
        missing = missing_requirements()
        if missing:
            print(
                f"infonorm: error: the command line needs {', '.join(missing)}: "
                f"pip install 'infonorm[{EXTRA}]'",
                file=sys.stderr,
            )
            return 1
        from infonorm.quiz.cli import main as cli_main
    except KeyboardInterrupt:
        print("infonorm: error: interrupted", file=sys.stderr)
        return 130
    return cli_main(argv)
