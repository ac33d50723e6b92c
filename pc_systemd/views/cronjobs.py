"""Jobs as Kubernetes ``batch/v1`` CronJobs (``run-job export kubernetes``).

Built with the official client's models (the optional ``kubernetes``
extra), imported only here and only when exporting. What a job asks that
Kubernetes cannot do the same way is refused (one line each, nothing is
exported); what has no meaning there is listed as not mapped (one line each,
on stderr): never silently dropped.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pc_systemd.model.config import LABEL_NAME, Config, Kubernetes, label_value
from pc_systemd.model.errors import Problem
from pc_systemd.model.job import Job
from pc_systemd.model.job_keys import KEYS_BY_NAME
from pc_systemd.model.nodes import FILE_KEY
from pc_systemd.model.schedule import CronSchedule, ScheduleError

JOB_LABEL = "process-control/job"
TAG_LABEL_PREFIX = "tag.process-control/"
SCHEDULE_ANNOTATION = "process-control/schedule"
SOURCE_ANNOTATION = "process-control/source"
# A CronJob's name is at most 52 characters: the Jobs it creates add 11 ("-" and
# the scheduled time in minutes), and a Job's name is a 63-character label.
MAX_NAME = 52
# The controller looks every 10 s; a run started within a minute of its time
# is that run (cron's own granularity). Later would be a catch-up, which cron
# does not do: without catch_up, Kubernetes skips it.
NO_CATCH_UP_DEADLINE = 60
CONTAINER = "job"
# The script of a command list: it only ever references its arguments as
# "${N}", so no argument is read by the shell as code.
SHELL = "/bin/sh"
# Keys with no Kubernetes meaning: the job is exported without them.
NOT_MAPPED = {
    "nice": "Kubernetes has no process priority setting",
    "io_class": "Kubernetes has no I/O scheduling class setting",
    "random_delay": "Kubernetes starts each run at its scheduled time",
    "failmail": "Kubernetes sends no mail; watch failed Jobs instead",
    "failure_threshold_for_mail": "Kubernetes sends no mail",
    "slow_start_command": "there is no run by hand with another command",
    "stop_after_failures": "a CronJob keeps being scheduled after failures",
    "logging": "a run's output is its pod's log",
}
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")

Translate = Callable[[CronSchedule], tuple[str, ...]]


@dataclass(frozen=True)
class Export:
    """The CronJobs of every scheduled job, in slug order, or why not."""

    objects: tuple[tuple[str, tuple[dict[str, Any], ...]], ...]  # (slug, its CronJobs)
    problems: tuple[Problem, ...]  # refusals: nothing may be exported
    not_mapped: tuple[Problem, ...]  # warnings


def dns_name(slug: str) -> str:
    """The DNS-1123 label a slug becomes: lower case, each run of other
    characters one '-', none first or last, at most MAX_NAME characters."""
    return _NOT_ALNUM.sub("-", slug.lower()).strip("-")[:MAX_NAME].rstrip("-")


def escape_dollars(text: str) -> str:
    """Kubernetes expands ``$(VAR)`` in a container's command, args and env
    values, and reads ``$$`` as ``$``; doubling every ``$`` makes it pass
    each string on unchanged."""
    return text.replace("$", "$$")


def command_argv(argvs: Iterable[tuple[str, ...]]) -> list[str]:
    """The container's command: one argument list as it is, or several run
    in order by ``sh -c`` until the first that fails (the script ends with
    its status), each argument only ever referenced as "${N}".

    Each program is started with ``exec`` (in a subshell but the last):
    ``exec`` searches PATH as execvp does, where a bare "${1}" would run a
    shell builtin of that name instead (``echo``, ``eval``, ``exec``...)."""
    lists = list(argvs)
    if len(lists) == 1:
        return list(lists[0])
    steps: list[str] = []
    flat: list[str] = []
    for argv in lists:
        first = len(flat) + 1
        flat.extend(argv)
        steps.append("exec " + " ".join(f'"${{{n}}}"' for n in range(first, first + len(argv))))
    script = "".join(f"({step}) || exit\n" for step in steps[:-1]) + steps[-1] + "\n"
    return [SHELL, "-c", script, "sh", *flat]


def export(config: Config, jobs: Iterable[Job], translate: Translate) -> Export:
    """The CronJobs of ``jobs`` with a schedule; ``translate`` gives the
    schedules Kubernetes reads for one cron schedule
    (:func:`pc_systemd.model.robfig.cronjob_schedules`)."""
    cluster = config.kubernetes or Kubernetes()
    problems: list[Problem] = []
    warnings: list[Problem] = []
    objects: list[tuple[str, tuple[dict[str, Any], ...]]] = []
    names: dict[str, str] = {}  # CronJob name -> slug
    for job in jobs:
        if job.schedule is None:
            continue
        refused = refusals(job, cluster)
        warnings.extend(not_mapped(job))
        if refused:
            problems.extend(refused)
            continue
        try:
            schedules = translate(job.schedule)
        except ScheduleError as err:
            problems.append(job.problem("schedule", f"{err} (for Kubernetes)"))
            continue
        made = []
        for index, name in enumerate(cronjob_names(job.slug, len(schedules))):
            other = names.setdefault(name, job.slug)
            if other != job.slug:
                problems.append(job.problem(FILE_KEY, f"jobs {other!r} and {job.slug!r} would "
                                                      f"both be the CronJob {name!r}: rename one"))
                continue
            made.append(cronjob(job, cluster, name, schedules[index]))
        objects.append((job.slug, tuple(made)))
    return Export(tuple(objects), tuple(problems), tuple(warnings))


def cronjob_names(slug: str, count: int) -> list[str]:
    """One name per schedule: the slug's, or with ``-1``, ``-2``... when several."""
    if count == 1:
        return [dns_name(slug)]
    suffixes = [f"-{n}" for n in range(1, count + 1)]
    width = MAX_NAME - max(len(s) for s in suffixes)
    return [dns_name(slug)[:width].rstrip("-") + s for s in suffixes]


def refusals(job: Job, cluster: Kubernetes) -> list[Problem]:
    """What this job asks that its CronJobs could not do the same way."""
    found = []
    if not dns_name(job.slug):
        found.append(job.problem(FILE_KEY, f"the job name {job.slug!r} has no letter or digit "
                                         "for a Kubernetes name"))
    if not label_value(job.slug):
        found.append(job.problem(FILE_KEY, f"the job name {job.slug!r} cannot be a Kubernetes "
                                         "label value (at most 63 letters, digits, '-_.', "
                                         "starting and ending with a letter or digit)"))
    if (job.image or cluster.image) is None:
        found.append(job.problem("image", "no container image: set image here or "
                                          "kubernetes.image in the global configuration"))
    for tag in job.tag:
        if not LABEL_NAME.match(tag):
            found.append(job.problem("tag", f"the tag {tag!r} cannot be a Kubernetes label "
                                            "name (at most 63 letters, digits, '-_.')"))
    if job.retry is not None and not _kubernetes_delays(job.retry.attempts, job.retry.delay,
                                                         job.retry.backoff):
        found.append(job.problem("retry", "Kubernetes retries a failed pod after 10 s, then "
                                          "twice as long each time, up to 6 min: only "
                                          "`delay: 0.1667` (10 s) with `backoff: 2` and at "
                                          "most 6 attempts has the same meaning"))
    if job.cpu_quota is not None and abs(job.cpu_quota * 10 - round(job.cpu_quota * 10)) > 1e-6:
        found.append(job.problem("cpu_quota", f"{job.cpu_quota:g}% is not a whole number of "
                                              "millicores (Kubernetes' unit: 0.1%)"))
    if job.credentials:
        found.append(job.problem("credentials", "the host's credentials_directory is not in "
                                                "the cluster: give the job a Kubernetes Secret "
                                                "instead (it would run without its credentials)"))
    return found


def not_mapped(job: Job) -> list[Problem]:
    """One warning per key the job sets that its CronJobs leave out."""
    found = []
    for key, why in NOT_MAPPED.items():
        if getattr(job, key) != KEYS_BY_NAME[key].default:
            found.append(job.problem(key, f"not mapped to Kubernetes: {why}"))
    return [dataclasses.replace(p, warning=True) for p in found]


# Kubernetes' back-off for a Job's failed pods: 10 s, doubled each time, at most 6 min.
K8S_FIRST_DELAY = 10.0
K8S_MAX_DELAY = 360.0


def _kubernetes_delays(attempts: int, delay_minutes: float, backoff: float) -> bool:
    """Whether ``retry``'s delays are the ones Kubernetes waits (to the second)."""
    ours = [delay_minutes * 60 * backoff ** n for n in range(attempts)]
    theirs = [min(K8S_FIRST_DELAY * 2 ** n, K8S_MAX_DELAY) for n in range(attempts)]
    return all(abs(a - b) < 0.5 for a, b in zip(ours, theirs, strict=True))


def labels(job: Job, cluster: Kubernetes) -> dict[str, str]:
    found = dict(cluster.labels)
    found.update((TAG_LABEL_PREFIX + tag, "true") for tag in job.tag)
    found[JOB_LABEL] = job.slug
    return found


def cronjob(job: Job, cluster: Kubernetes, name: str, schedule: str) -> dict[str, Any]:
    """One CronJob as a plain mapping (the client's serialization of its model)."""
    from kubernetes import client  # only the export pays for the client (~1 s)

    assert job.schedule is not None
    own_labels = labels(job, cluster)
    metadata = client.V1ObjectMeta(
        name=name, namespace=cluster.namespace, labels=own_labels,
        # the file's name, not its path: the same job files give the same objects anywhere
        annotations={SCHEDULE_ANNOTATION: job.schedule.expr,
                     SOURCE_ANNOTATION: os.path.basename(job.path)})
    pod = client.V1PodSpec(
        containers=[container(job, cluster)],
        restart_policy="Never",
        service_account_name=cluster.service_account,
        active_deadline_seconds=math.ceil(job.timeout * 60) if job.timeout else None,
        security_context=_pod_security(cluster),
    )
    job_spec = client.V1JobSpec(
        backoff_limit=job.retry.attempts if job.retry else 0,
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels=own_labels), spec=pod),
    )
    spec = client.V1CronJobSpec(
        schedule=schedule,
        concurrency_policy="Forbid",
        suspend=job.disabled,
        starting_deadline_seconds=None if job.catch_up else NO_CATCH_UP_DEADLINE,
        job_template=client.V1JobTemplateSpec(
            metadata=client.V1ObjectMeta(labels=own_labels), spec=job_spec),
    )
    # Debian 12's client (22.6) predates timeZone (Kubernetes 1.24): added below
    has_time_zone = "time_zone" in client.V1CronJobSpec.attribute_map
    if job.timezone is not None and has_time_zone:
        spec.time_zone = job.timezone
    body = client.V1CronJob(api_version="batch/v1", kind="CronJob", metadata=metadata,
                            spec=spec)
    serialize = client.ApiClient().sanitize_for_serialization
    result: dict[str, Any] = serialize(body)  # type: ignore[no-untyped-call]
    if job.timezone is not None and not has_time_zone:
        result["spec"]["timeZone"] = job.timezone
    return result


def container(job: Job, cluster: Kubernetes) -> Any:
    from kubernetes import client

    limits = {}
    if job.memory_max is not None:
        limits["memory"] = str(job.memory_max)
    if job.cpu_quota is not None:
        limits["cpu"] = f"{round(job.cpu_quota * 10)}m"
    return client.V1Container(
        name=CONTAINER,
        image=job.image or cluster.image,
        command=[escape_dollars(arg) for arg in command_argv(c.argv for c in job.command)],
        env=[client.V1EnvVar(name=k, value=escape_dollars(v)) for k, v in job.environment]
        or None,
        resources=client.V1ResourceRequirements(limits=limits) if limits else None,
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False,
            capabilities=client.V1Capabilities(drop=["ALL"]),
        ) if job.sandbox else None,
    )


def _pod_security(cluster: Kubernetes) -> Any:
    from kubernetes import client

    if cluster.run_as_user is None:
        return None
    return client.V1PodSecurityContext(run_as_user=cluster.run_as_user,
                                       run_as_non_root=cluster.run_as_user != 0)


def to_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    """A YAML stream of ``objects``; text of several lines (a command list's
    script) as a literal block, where PyYAML can write it exactly."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        # (NEL and the Unicode line separators are line breaks to YAML: quoted)
        block = "\n" in value and value.replace("\n", "").isprintable()
        style = "|" if block else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    # (allow_unicode loses a NEL in quoted text: PyYAML 6 writes it raw, reads it as a break)
    return yaml.dump_all(list(objects), Dumper=Dumper, sort_keys=False)
