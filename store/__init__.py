"""The SQL store: SQLAlchemy 2, SQLite by default, PostgreSQL through DATABASE_URL."""
