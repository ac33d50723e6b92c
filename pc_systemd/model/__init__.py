"""Job files and the global configuration, read and checked: the keys, the
models, schedules, the per-file cache."""
