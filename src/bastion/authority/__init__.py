"""The authority: sign-in, factors, sessions, OAuth 2.0 / OpenID Connect endpoints, keys."""
