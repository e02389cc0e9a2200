"""Admin and agent side of the web app: the JSON API now, pages later."""
