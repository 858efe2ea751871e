"""The `infonorm` command's entry point.

It lives outside the infonorm package so that it runs before `import infonorm` and the torch
that it imports. Ctrl-C while those imports run (about two seconds) cannot be caught as a
KeyboardInterrupt: raised inside an extension module's initialization it comes out as
whatever that module makes of it (a RecursionError, an AttributeError, an abort). So until
the command itself takes over signals (`infonorm.quiz.cli.main`), Ctrl-C prints one line and
ends the process at once, with exit status 130: nothing has been written yet.
"""

import contextlib
import os
import signal
import sys

EXIT_INTERRUPTED = 130


def _interrupted_during_start_up(signum: int, frame: object) -> None:
    os.write(2, b"infonorm: error: interrupted\n")
    os._exit(EXIT_INTERRUPTED)


def main() -> int:
    with contextlib.suppress(ValueError):  # not the main thread: signals are not ours
        signal.signal(signal.SIGINT, _interrupted_during_start_up)
    try:
        from infonorm.quiz import main as infonorm_main

        return infonorm_main()
    except KeyboardInterrupt:
        print("infonorm: error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
