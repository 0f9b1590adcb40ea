"""Prometheus metrics of the API: requests by route, upload bytes, and the queues read from the database."""
