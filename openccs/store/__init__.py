"""The state store: SQLAlchemy tables, engine set-up and Alembic migrations."""
