"""The services of the command plane; importing this package registers their commands."""

from bastion.services import audit_log as audit_log
from bastion.services import chat as chat
from bastion.services import directory as directory
from bastion.services import mail as mail
from bastion.services import role_groups as role_groups
from bastion.services import sites as sites

__all__ = ["audit_log", "chat", "directory", "mail", "role_groups", "sites"]
