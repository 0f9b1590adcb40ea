"""The web app: server-rendered pages over the same services the API uses (docs/web.md)."""
