"""The cron-host backend: the cron file, the direct runner, its lock, run
log, history and metrics file."""
