"""The broker: what members of the developer group may ask of systemd, asked
for them by an unprivileged user (``process-control-broker``) over a socket.

systemd passes polkit only a unit's name and a verb, never the job mode, so
no polkit rule can let a user start a unit without also letting them cancel
every queued job on the host (``--job-mode=flush``). Members therefore get
no systemd permission of their own: ``run-job`` sends one request
(:mod:`pc_systemd.systemd.broker_protocol`) to ``process-control-broker.socket``;
one broker process per connection (:mod:`.server`) checks who asks and what,
and calls systemd with job mode ``replace`` only. ``run-job``'s side is
:mod:`pc_systemd.systemd.broker_client` (beside the runner that uses it: the
server, above, uses the views of holds and the runner).
"""
