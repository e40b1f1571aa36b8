"""`python -m diffusers_tui` runs the command line."""

import sys

from diffusers_tui.commands import main

sys.exit(main())
