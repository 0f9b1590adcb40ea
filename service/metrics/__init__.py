"""Prometheus metrics of the API: requests by route, and the queues read from the database."""
