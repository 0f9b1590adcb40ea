"""Queued work of every kind: its status, lease columns (``lease``) and lease operations (``queue``).

Fine-tunes and generations use all three; webhook deliveries keep their own claim for now.
"""
