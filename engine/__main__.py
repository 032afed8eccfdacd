"""`python -m engine` runs the `journeys` command."""

import sys

from engine.app.cli import main

sys.exit(main())
