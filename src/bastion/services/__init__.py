"""The services of the command plane; importing this package registers their commands."""

from bastion.services import audit_search as audit_search
from bastion.services import directory as directory

__all__ = ["audit_search", "directory"]
