"""``process-control-generator`` as an installed command.

pip installs it as a console script next to ``run-job`` (link it into
``/etc/systemd/system-generators/``); the Debian package installs its own
launcher in ``/usr/lib/systemd/system-generators/``.  Either way the units
name the Python that runs it (``sys.executable``), so they never point into
a source checkout.
"""

from __future__ import annotations

import sys

from pc_systemd.systemd.generator import main as generate


def main() -> int:
    return generate(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
