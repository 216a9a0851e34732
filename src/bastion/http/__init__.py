"""The HTTP edge: every route and page, the error answers, web sessions, templates."""
