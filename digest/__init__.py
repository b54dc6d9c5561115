"""paper-digest: trending research papers, ranked per subscriber, delivered daily.

The package is laid out by stage (see DESIGN.md §3): ``ingest`` parses dumps,
``store`` owns the SQLite state, ``pipeline`` wires the stages, ``cli`` is the
``digest`` command.
"""

__version__ = "0.1.0"
