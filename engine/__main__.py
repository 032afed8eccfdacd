"""`python -m engine` runs the `journeys` command."""

import sys

from engine.cli import main

sys.exit(main())
