"""HTTP: the API listener (Convex HTTP API, REST, sync, storage, health) and the site listener."""
