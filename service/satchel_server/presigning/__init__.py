"""PresignObject: URLs and POST forms signed with scope-level credentials."""
