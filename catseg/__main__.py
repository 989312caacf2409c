"""`python -m catseg ...`: see catseg.cli."""

import sys

from catseg.cli import main

sys.exit(main())
