"""The core: errors, clock, identifiers, text rules, settings, secrets at rest.

It imports no other part of Bastion.
"""
