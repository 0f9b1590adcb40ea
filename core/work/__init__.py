"""Queued work of every kind (fine-tunes, generations, webhook deliveries): its status and leases."""
