"""Sharing the credential cache, the STS budget and quotas' pending uploads through Redis.

- crypto: entry names are keyed hashes; entry contents are sealed with AES-256-GCM.
- link: one Redis client with short timeouts, and whether Redis answers (fallback state).
- lock: a short fleet-wide lock with an owner token (single-flight across replicas).
- budget: the fleet's AssumeRole token bucket, one Lua script on Redis's clock.
- redis_store: the SharedCache the broker and the signers use (get, or take turns to mint).
- pending_uploads: folder quotas' allowed uploads that may still land, one entry per folder.
- assembly: builds these from Settings (or the local-only defaults when no url is set).

When Redis fails, every replica carries on with its own cache and a local share of
the budget. The one exception is folder quotas: uploads to quota scopes are refused
until Redis answers, because local pending uploads could not bound the fleet.
"""
