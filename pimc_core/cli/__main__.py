"""``python -m pimc_core.cli`` runs the ``pimc`` command line."""

import sys

from pimc_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
