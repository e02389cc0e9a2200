"""The admin, supervisor and agent side of the web app: pages, accounts and the JSON API."""
