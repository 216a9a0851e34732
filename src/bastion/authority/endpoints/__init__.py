"""HTTP endpoints of the authority (Starlette at the edge; the rules live elsewhere)."""
