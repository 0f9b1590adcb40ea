"""Tenant-owned models: each version is one trained adapter with its training record."""
