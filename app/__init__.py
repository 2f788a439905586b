"""Convect: Convex's programming model in Python, on PostgreSQL."""
