"""``python -m digest``: the same entry point as the ``digest`` command."""

import sys

from digest.cli import main

sys.exit(main())
