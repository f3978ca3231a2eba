"""Where accepted events live: the storage interface, its SQLite and PostgreSQL backends, migrations."""
