"""The dashboard: accounts, sessions, pages and charts on the collector's FastAPI app."""
