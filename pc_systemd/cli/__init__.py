"""The commands: run-job, cron-generate, check-jobs-icinga, and the README's key tables."""
