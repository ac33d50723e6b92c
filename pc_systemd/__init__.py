"""process-control, made systemd-native: job files -> validated jobs -> units / cron lines."""
