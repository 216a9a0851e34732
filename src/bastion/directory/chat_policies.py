"""Chat policies: their settings, and the ``Global`` policies every tenant starts with.

A policy of each kind (meeting, messaging) named ``Global`` applies to every user without
an assignment of that kind; ``Grant-ChatPolicy`` assigns another. Settings are declared
here once, as pydantic models: they are the policies' output schema, and the commands that
create and change policies take the same fields as parameters.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import Connection, insert, select

from bastion.core.ids import new_id
from bastion.store.schema import chat_policies

PolicyKind = Literal["meeting", "messaging"]
GLOBAL = "Global"


class MeetingSettings(BaseModel):
    allowRecording: bool = Field(True, description="Organizers may record meetings.")
    allowTranscription: bool = Field(True, description="Meetings may be transcribed.")
    allowAnonymousJoin: bool = Field(
        False, description="People who are not signed in may join meetings."
    )
    autoAdmittedUsers: Literal["Everyone", "EveryoneInCompany", "OrganizerOnly"] = Field(
        "EveryoneInCompany", description="Who joins without waiting in the lobby."
    )
    maxParticipants: int = Field(300, ge=2, le=1000, description="Largest meeting allowed.")


class MessagingSettings(BaseModel):
    allowEditMessages: bool = Field(True, description="Users may edit sent messages.")
    allowDeleteMessages: bool = Field(True, description="Users may delete sent messages.")
    allowGiphy: bool = Field(True, description="Animated images may be sent.")
    giphyRating: Literal["Strict", "Moderate"] = Field(
        "Moderate", description="How strictly animated images are filtered."
    )
    readReceipts: Literal["Everyone", "UserPreference", "None"] = Field(
        "UserPreference", description="Whether senders see that a message was read."
    )
    allowUrlPreviews: bool = Field(True, description="Links show a preview.")


SETTINGS: dict[str, type[BaseModel]] = {"meeting": MeetingSettings, "messaging": MessagingSettings}


def ensure_global_policies(conn: Connection, tenant_id: str, now: float) -> None:
    """Give a tenant its ``Global`` policies (those it already has are left alone)."""
    have = set(
        conn.execute(
            select(chat_policies.c.kind).where(
                chat_policies.c.tenant_id == tenant_id, chat_policies.c.name == GLOBAL
            )
        ).scalars()
    )
    for kind, model in SETTINGS.items():
        if kind in have:
            continue
        conn.execute(
            insert(chat_policies).values(
                id=new_id(),
                tenant_id=tenant_id,
                kind=kind,
                name=GLOBAL,
                description="Applies to everyone without another policy.",
                settings=model().model_dump(mode="json"),
                created_at=now,
            )
        )
