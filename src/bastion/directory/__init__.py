"""The tenant directory: tenants, users, groups (tables and queries)."""
