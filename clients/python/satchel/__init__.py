"""Python client of Satchel. The generated stubs live in `satchel.v1`."""
