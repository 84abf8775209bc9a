"""OSS requests Satchel makes for itself (folder listings), over aiohttp."""
