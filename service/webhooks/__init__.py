"""Webhooks: tenants' HTTPS endpoints receive signed job events, retried until delivered."""
