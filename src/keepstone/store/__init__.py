"""Persistence: SQLAlchemy tables, migrations and the transaction boundary."""
