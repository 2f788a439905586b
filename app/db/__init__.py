"""The document store on PostgreSQL: pool, ids, queries, reads, writes, transactions."""
