"""Sharing the credential cache and the STS budget across replicas, through Redis.

- crypto: entry names are keyed hashes; entry contents are sealed with AES-256-GCM.
- link: one Redis client with short timeouts, and whether Redis answers (fallback state).
- lock: a short fleet-wide lock with an owner token (single-flight across replicas).
- budget: the fleet's AssumeRole token bucket, one Lua script on Redis's clock.
- redis_store: the SharedCache the broker and the signers use (get, or take turns to mint).
- wiring: builds these from Settings (or the local-only defaults when no url is set).

Nothing here is needed for correctness: when Redis fails, every replica carries on
with its own cache and a local share of the budget.
"""
