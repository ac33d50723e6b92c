"""Every job file joined with what its backend knows of it, for listings, --status and --next."""
