"""`python -m onboardd`: the command line (onboardd.cli)."""

import sys

from onboardd.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
