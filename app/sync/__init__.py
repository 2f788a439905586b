"""Live queries: the Convex sync protocol, subscriptions, invalidation, notifications."""
