"""`make bench`: Convect against a hand-written FastAPI + asyncpg app, same SQL, same run."""
