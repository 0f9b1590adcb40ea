"""Training jobs: the queue, fair-share scheduling and the workers that run them."""
