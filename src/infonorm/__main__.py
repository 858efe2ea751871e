"""`python -m infonorm` runs the command line."""

import sys

from infonorm.cli import main

sys.exit(main())
