"""Exit statuses a job's child process ends with, read by the supervisor: any other means it died mid-job."""

EXIT_DONE = 0
EXIT_LEASE_LOST = 3
