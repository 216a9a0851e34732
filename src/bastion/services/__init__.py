"""The services of the command plane; importing this package registers their commands."""

from bastion.services import audit_log as audit_log
from bastion.services import directory as directory
from bastion.services import role_groups as role_groups

__all__ = ["audit_log", "directory", "role_groups"]
