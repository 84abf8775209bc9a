"""Who may ask: bearer keys, callers and grants, admission, rate limits, and the audit trail."""
