"""The `infonorm` command's entry point.

It lives outside the infonorm package so that it runs before `import infonorm` and the torch
that it imports: Ctrl-C at any moment of the two seconds these take gives one line on stderr
and exit status 130, not a traceback of the import machinery.
"""

import sys


def main() -> int:
    try:
        from infonorm.quiz import main as infonorm_main

        return infonorm_main()
    except KeyboardInterrupt:
        print("infonorm: error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
