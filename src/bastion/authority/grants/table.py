"""The token endpoint's grants, by ``grant_type`` (RFC 6749 section 3.2).

One line per grant. The discovery document's ``grant_types_supported`` is this table's keys,
in this order. A ``grant_type`` not in the table is ``unsupported_grant_type`` (section 5.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bastion.authority.grants.authorization_code import AuthorizationCodeGrant
from bastion.authority.grants.client_credentials import ClientCredentialsGrant
from bastion.authority.grants.device_code import DeviceCodeGrant
from bastion.authority.grants.grant import Grant
from bastion.authority.grants.refresh_token import RefreshTokenGrant
from bastion.core.errors import InvalidRequest, UnsupportedGrantType


def _by_type(*grants: Grant) -> Mapping[str, Grant]:
    return MappingProxyType({grant.grant_type: grant for grant in grants})


GRANTS = _by_type(
    AuthorizationCodeGrant(),
    RefreshTokenGrant(),
    DeviceCodeGrant(),
    ClientCredentialsGrant(),
)

#: what an unsupported grant's answer suggests instead: a sentence, so written by hand
_SUPPORTED_HINT = "Use authorization_code (with PKCE), the device code grant, or refresh_token."


def grant_for(grant_type: object) -> Grant:
    """The grant a token request names, or the error section 5.2 gives for it."""
    if not grant_type:
        raise InvalidRequest("grant_type is required.")
    grant = GRANTS.get(str(grant_type))
    if grant is None:
        raise UnsupportedGrantType(
            f"grant_type '{str(grant_type)[:64]}' is not supported.", hint=_SUPPORTED_HINT
        )
    return grant
