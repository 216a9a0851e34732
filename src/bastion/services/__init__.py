"""The services of the command plane; importing this package registers their commands."""

from bastion.services import directory as directory

__all__ = ["directory"]
