"""The HTTP edge: the Starlette application, templates and static files."""
