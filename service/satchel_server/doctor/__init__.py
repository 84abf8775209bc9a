"""`satchel doctor`: check a deployment against the real cloud (or the emulator) before
players do. Each check is one line: pass, warn or fail, and a fix for each failure."""
