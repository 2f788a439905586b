"""Helpers shared by the test suite: databases, server processes, clients."""
