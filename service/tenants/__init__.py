"""A tenant's data as a whole: export everything it holds, delete everything it holds."""
