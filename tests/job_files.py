"""Job files shared by several test modules."""

from __future__ import annotations

import textwrap

# Broken job files, each with the end of the one-line error it gives
# (after the file's path): ``:line: key: problem``.
BAD = [
    ("command: /bin/true\n", ":1: name: required key is missing"),
    ("name: x\n", ":1: command: required key is missing"),
    ("name: [x]\ncommand: /bin/true\n", ":1: name: expected a string, got a list"),
    ("name: ''\ncommand: /bin/true\n", ":1: name: must not be empty"),
    ("name: x\ncommand:\n", ":2: command: expected a command line, got null"),
    ("name:\ncommand: /bin/true\n", ":1: name: expected a string, got null"),
    ("name: x\ncommand: []\n", ":2: command: must not be an empty list of commands"),
    ("name: x\ncommand: ''\n", ":2: command: command is empty"),
    ("name: x\ncommand: \"/bin/a\\nb\"\n", ":2: command: command must not contain a newline"),
    ("name: x\ncommand:\n  - /bin/a\n  - \"b\\rc\"\n", ":4: command: command must not contain a carriage"),
    ("name: x\ncommand: /bin/echo 'open\n", ":2: command: cannot split command line: No closing"),
    ("name: x\ncommand: +/bin/sh\n", ":2: command: program must not start with '+'"),
    ("name: x\ncommand: '-/bin/false'\n", ":2: command: program must not start with '-'"),
    ("name: x\ncommand: bin/tool\n", ":2: command: program 'bin/tool': give an absolute path"),
    ("name: x\ncommand: /bin/true\nslow_start_command: {a: 1}\n",
     ":3: slow_start_command: expected a command line, got a mapping"),
    ("name: x\ncommand: /bin/true\nschedule: '@daily'\n", ":3: schedule: "),
    ("name: x\ncommand: /bin/true\nschedule: '* * * *'\n", ":3: schedule: "),
    ("name: x\ncommand: /bin/true\nschedule: '* * * * * *'\n", ":3: schedule: "),
    ("name: x\ncommand: /bin/true\nschedule: 'A=1 * * * *'\n", ":3: schedule: "),
    ("name: x\ncommand: /bin/true\nschedule: \"* * * *\\n*\"\n", ":3: schedule: "),
    ("name: x\ncommand: /bin/true\ntimezone: Mars/Olympus\n",
     ":3: timezone: unknown time zone 'Mars/Olympus'"),
    ("name: x\ncommand: /bin/true\ndisabled: maybe\n", ":3: disabled: expected true or false"),
    ("name: x\ncommand: /bin/true\ntimeout: -1\n", ":3: timeout: must be a number of minutes >= 0"),
    ("name: x\ncommand: /bin/true\ntimeout: ten\n", ":3: timeout: expected a number, got a string"),
    ("name: x\ncommand: /bin/true\ntimeout: .nan\n", ":3: timeout: must be a number of minutes"),
    ("name: x\ncommand: /bin/true\ntimeout: true\n", ":3: timeout: expected a number, got a boolean"),
    ("name: x\ncommand: /bin/true\nenvironment: [A]\n", ":3: environment: expected a mapping"),
    ("name: x\ncommand: /bin/true\nenvironment:\n  1A: x\n", ":4: environment.1A: '1A' is not"),
    ("name: x\ncommand: /bin/true\nenvironment:\n  A:\n", ":4: environment.A: expected a value"),
    ("name: x\ncommand: /bin/true\nenvironment:\n  A: \"a\\nb\"\n",
     ":4: environment: environment value of A must not contain a newline"),
    ("name: x\ncommand: /bin/true\ntag: [a, [b]]\n", ":3: tag: expected a string, got a list"),
    ("name: x\ncommand: /bin/true\nallow_overtime: 1\n", ":3: allow_overtime: expected true or false"),
    ("name: x\ncommand: /bin/true\nfailure_threshold_for_mail: 0\n",
     ":3: failure_threshold_for_mail: must be a whole number >= 1"),
    ("name: x\ncommand: /bin/true\nfailmail: {to_address: a@b}\n", ":3: failmail: from_address is missing"),
    ("name: x\ncommand: /bin/true\nfailmail: {from: a, to_address: b}\n",
     ":3: failmail.from: unknown key"),
    ("name: x\ncommand: /bin/true\nlogging: syslog\n",
     ":3: logging: must be one of journal, file, got 'syslog'"),
    ("name: x\nname: y\ncommand: /bin/true\n", ":2: name: duplicate key (first at line 1)"),
    ("name: x\ncommand: /bin/true\n\tindented: tab\n", ":3: (yaml): tab character at column 1"),
    ("", ":1: (file): empty file: expected a mapping of job keys"),
    ("just text\n", ":1: (file): expected a mapping of job keys"),
    ("---\nname: x\n---\nname: y\n", ":3: (yaml): but found another document"),
    ("name: !!python/object:os.system x\ncommand: /bin/true\n", ":1: name: unsupported YAML tag"),
]

# The jobs the generator's tests hand to a real systemd: schedules, a
# disabled and a broken job, a timeout, a list that stops at its first
# failure, output to the journal and to a file, values systemd would expand.
JOB_FILES = {
    "every5": "name: Every five\ncommand: /bin/true\nschedule: '*/5 * * * *'\n",
    "weekday": "name: Weekday\ncommand: /bin/true\nschedule: '30 2 * * mon-fri'\n",
    "orrule": "name: Either day\ncommand: /bin/true\nschedule: '0 12 13 * fri'\n",
    "disabled": "name: Off\ncommand: /bin/true\nschedule: '* * * * *'\ndisabled: true\n",
    "manual": "name: By hand\ncommand: /usr/bin/touch made-by-job\n",
    "broken": "name: Broken\ncommand: /bin/true\nschedule: '61 * * * *'\n",
    "sleeper": textwrap.dedent(
        """\
        name: Sleeper
        command: /bin/sh -c "sleep 300 & exec sleep 301"
        timeout: 0.05
        """
    ),
    "stops": textwrap.dedent(
        """\
        name: Stops early
        command:
            - /bin/echo first-step
            - /bin/false
            - /bin/echo never-printed
        """
    ),
    "chatty": "name: Chatty\ncommand: /usr/bin/seq 1 200000\n",
    "tofile": textwrap.dedent(
        """\
        name: To a file
        logging: file
        command:
            - /usr/bin/seq 1 50000
            - /bin/sh -c "echo to-stderr >&2"
        """
    ),
    "exact": textwrap.dedent(
        """\
        name: "Exact 100% $HOME"
        command: /bin/echo '$HOME' "%n %%" 'a "quoted" \\ word' ${PATH} ;
        environment:
            PCT: "50% $USER ${HOME} \\\\n"
            QUOTE: 'say "hi"'
            FLAG: true
        slow_start_command: /usr/bin/env
        """
    ),
}


# The original's job.example.yaml, byte for byte.
JOB_EXAMPLE = """\
# Human-readable name of the job.
name: Take This Job and Shove It

# Command line to execute.  Arguments are split on whitespace, and
# quoting works as in a shell.
command: /usr/local/bin/timecard --start 9:00 --end "5:30 pm"

# Alternative command to run with run-job --slow-start
slow_start_command: /usr/local/bin/timecard --catch-up

# Cron-style schedule.
schedule: "*/5 * * * *"

# Time limit in minutes.
timeout: 30

environment:
    PYTHONPATH: /usr/share/invisible/pie
"""
