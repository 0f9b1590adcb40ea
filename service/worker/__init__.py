"""Workers: a supervisor that leases jobs, and one child process per running job."""
