"""The worker processes: a supervisor that leases queued work, one child process per fine-tune,
a resident generation process, and the background roles (webhook delivery, storage cleanup).

Workers import the torch engine (``trainer``); the API (``service``) never imports this
package: it starts workers as processes (``python -m worker``).
"""
