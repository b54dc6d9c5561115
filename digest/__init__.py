"""paper-digest: trending research papers, ranked per subscriber, delivered daily.

The package is laid out by stage (docs/architecture.md has the map): ``ingest`` parses dumps,
``store`` owns the SQLite state, ``pipeline`` wires the stages, ``cli`` is the
``digest`` command.
"""

# Before 1.0 the minor version is the database's schema version (CONTRIBUTING.md, "Versions"):
# a release with a migration bumps it, any other release the patch.
__version__ = "0.17.1"
