"""The sites service."""
