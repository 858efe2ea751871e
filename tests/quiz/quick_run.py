"""`infonorm ARGS` in a process of its own, with one quick claim in place of the quiz's, for
the tests that need real processes (signals, pipes, runs side by side).

    python quick_run.py [--ready FILE] [--hold | --go FILE] -- ARGS...

--ready FILE  create FILE once the report is being written (its hidden folder holds a file)
--hold        then wait for a signal
--go FILE     then wait until FILE exists, and go on

The claim "P1.a" is confirmed with the run's seed as its measured value, so that the report
of each run can be told apart.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import infonorm
import infonorm.quiz.claims
import infonorm.quiz.report
from infonorm.quiz import cli
from infonorm.quiz.claims import Claim
from infonorm.quiz.claims.engine import holds

ROOT = Path(__file__).resolve().parents[2]

QUICK_CLAIM = Claim(
    "P1.a",
    "P1",
    "a quick claim",
    lambda ctx: holds(True, expected=ctx.seed, measured=ctx.seed, reference="the seed"),
    title="a quick claim",
)


def child_env() -> dict[str, str]:
    """The environment of a child process that imports the infonorm under test, and tests/."""
    src = Path(infonorm.__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready", type=Path)
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--go", type=Path)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    infonorm.quiz.claims.select = lambda problems: [QUICK_CLAIM]
    render_page = infonorm.quiz.report.render_page

    def render_and_wait(entries, meta, folder):
        page = render_page(entries, meta, folder)
        if options.ready is not None:
            options.ready.touch()
        while options.hold or (options.go is not None and not options.go.exists()):
            time.sleep(0.01)
        return page

    infonorm.quiz.report.render_page = render_and_wait
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
