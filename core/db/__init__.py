"""Database: typed SQLAlchemy models, engine and session helpers, migrations."""
