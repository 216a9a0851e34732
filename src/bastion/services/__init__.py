"""The services of the command plane, and the list the server is built from.

Adding a service is one module that makes a :class:`~bastion.plane.service.Service` and
declares its commands on it, and one line here."""

from bastion.plane.service import Service
from bastion.services import chat, directory, mail, sites

#: the services the server offers: their routes, catalogs and audiences come from this list
SERVICES: tuple[Service, ...] = (
    directory.directory,
    mail.mail,
    sites.sites,
    chat.chat,
)

__all__ = ["SERVICES"]
