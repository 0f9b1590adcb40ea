"""The per-tenant index of training footage's frame hashes, for the memorisation check."""
