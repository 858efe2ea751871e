"""`python -m infonorm` runs the command line."""

import sys

from infonorm.quiz import main

sys.exit(main())
