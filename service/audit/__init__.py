"""The audit log: who did what to which object in which tenant, written with the action itself."""
