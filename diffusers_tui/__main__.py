"""`python -m diffusers_tui` runs the command line."""

import sys

from diffusers_tui.cli import main

sys.exit(main())
