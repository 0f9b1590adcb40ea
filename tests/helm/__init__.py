"""Offline checks of the Helm chart and the Dockerfile: no helm binary, no cluster, no network."""
