"""Persistence: the tables (SQLAlchemy Core), the database engine and Alembic migrations."""
