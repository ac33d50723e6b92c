"""The systemd backend: unit rendering and escaping, the generator, D-Bus,
the journal, running and status on systemd."""
