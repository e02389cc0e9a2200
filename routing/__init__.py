"""The Redis side of the hotline: key names, call sessions, the event stream (and later the router)."""
