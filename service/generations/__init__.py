"""Video generation: requests rendered by workers with a tenant's model version."""
