"""``python -m digest``: the same entry point as the ``digest`` command."""

import sys

from digest.cli import main

if __name__ == "__main__":  # not when a worker process (spawned) imports this module again
    sys.exit(main())
