"""Request validation (scopes, player ids, keys, permissions, lifetimes) and session policies."""
