"""Webhooks: tenants' HTTPS endpoints receive signed events of their work, retried until delivered."""
