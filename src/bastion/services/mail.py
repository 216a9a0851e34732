"""The mail service."""
