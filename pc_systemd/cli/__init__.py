"""The commands: run-job, cron-generate, check-jobs-icinga, and the key tables
of docs/configuration.md."""
