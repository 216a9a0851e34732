"""Second factors: TOTP (RFC 6238) and recovery codes; WebAuthn and push come later."""
