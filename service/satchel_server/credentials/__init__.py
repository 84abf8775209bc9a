"""Player credentials: their types, the broker that caches and coalesces them, the STS budget."""
