"""``bastion SERVICE COMMAND``: a parser built from the service's catalog, the call, and
listings page by page (with checkpoints)."""
