"""A throwaway PostgreSQL server for the benchmarks (not a test): its URL, then it runs until Ctrl-C.

    .venv/bin/python bench/pgcluster.py [--databases N]

Debian's PostgreSQL (apt-get install postgresql) in a temporary folder on
127.0.0.1, with PostgreSQL's default durability (fsync and synchronous
commit on, as in production; the tests' clusters turn them off). Prints one
URL per empty database it made, for ``bench/scale.py --database``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import postgres_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", type=int, default=1, help="empty databases to make (one per bench run)")
    args = parser.parse_args()
    with postgres_server(durable=True) as server:
        for _ in range(args.databases):
            print(server.create(), flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    main()
