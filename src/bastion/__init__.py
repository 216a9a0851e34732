"""Bastion: an MFA-first administration plane for multi-service organizations."""

__version__ = "0.1.0"

__all__ = ["__version__"]
