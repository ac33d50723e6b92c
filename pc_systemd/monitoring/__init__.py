"""Knowing when jobs fail: failure mail, the metrics format, and the units
of ours that send and write them on systemd hosts."""
