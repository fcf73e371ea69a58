"""The run store: one row per generation, SQLite by default, PostgreSQL for a team.

Owns the :class:`~.runstore.Store` API (:mod:`.runstore`), opening databases (:mod:`.engine`),
the schema and its ordered migrations (:mod:`.schema`), row values in and out (:mod:`.rows`) and
artifact paths that resolve from any working directory (:mod:`.paths`).

May import: specs, settings and errors only. Everything that records runs imports this package;
it imports nothing that records them.
"""
