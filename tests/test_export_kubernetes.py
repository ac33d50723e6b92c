"""``run-job export kubernetes``: jobs as batch/v1 CronJobs, built with the
official client's models, each object checked against them; the
container runs the job's argument lists byte for byte."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kubernetes import client

from pc_systemd.cli.run_job import run_job
from pc_systemd.model.config import Kubernetes
from pc_systemd.model.errors import PcError
from pc_systemd.model.jobset import load_jobs
from pc_systemd.model.robfig import cronjob_schedules
from pc_systemd.model.schedule import CronSchedule
from pc_systemd.views import cronjobs
from pc_systemd.views.cronjobs import MAX_NAME, command_argv, dns_name, escape_dollars, export
from tests.conftest import Site

CLUSTER = """\
kubernetes:
  image: registry.example/batch:1.4
  namespace: batch
  service_account: jobs
  run_as_user: 1000
  labels: {team: data, example.org/cost-centre: "42"}
"""
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


# -- Kubernetes' own expansion of command, args and env ------------------------
# A port of kubernetes/kubernetes third_party/forked/golang/expansion/expand.go
# (Expand, tryReadVariableName), which the kubelet applies to a container's
# command, args and env values: "$$" is "$", "$(NAME)" a defined variable's
# value (kept as written when undefined), any other "$" itself.


def k8s_expand(text: str, env: dict[str, str]) -> str:
    out, cursor = [], 0
    while cursor < len(text):
        char = text[cursor]
        if char != "$" or cursor + 1 == len(text):
            out.append(char)
            cursor += 1
            continue
        rest = text[cursor + 1:]
        if rest[0] == "$":
            out.append("$")
            cursor += 2
        elif rest[0] == "(" and ")" in rest:
            name = rest[1:rest.index(")")]
            out.append(env.get(name, f"$({name})"))
            cursor += 2 + rest.index(")")
        elif rest[0] == "(":
            out.append("$(")
            cursor += 2
        else:
            out.append("$" + rest[0])
            cursor += 2
    return "".join(out)


def test_the_expansion_port_reads_what_kubernetes_documents() -> None:
    env = {"HOME": "/root", "X": "x"}
    assert k8s_expand("$(HOME)/a", env) == "/root/a"
    assert k8s_expand("$$(HOME)", env) == "$(HOME)"
    assert k8s_expand("$(NOPE) $x $", env) == "$(NOPE) $x $"
    assert k8s_expand("a$$b$(X", env) == "a$b$(X"


@pytest.mark.parametrize("text", ["$(HOME)", "$$(HOME)", "$$$", "a$", "$(", "${1}", "$", "$$x"])
def test_escaped_dollars_reach_the_container_unchanged(text: str) -> None:
    assert k8s_expand(escape_dollars(text), {"HOME": "/root"}) == text


# -- the container's command: the job's argument lists, byte for byte ----------

HOSTILE_ARGS = ("two words", "it's", '"quoted"', "$HOME", "$(HOME)", "$$", "back\\slash",
                "new\nline", "", " ", "*", "`id`", "${1}", "-e", "tab\there", "é")


def _recorder(tmp_path: Path, name: str, status: int) -> str:
    """A program that writes its argument count and arguments (NUL-terminated)
    to <name>.args and exits with ``status``."""
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$#\" \"$@\" > '{tmp_path}/{name}.args'\n"
                    f"exit {status}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _recorded(tmp_path: Path, name: str) -> list[str] | None:
    path = tmp_path / f"{name}.args"
    if not path.exists():
        return None
    count, *args = path.read_bytes().decode().split("\0")[:-1]
    assert len(args) == int(count)
    return args


def _run_container(argv: list[str], env: dict[str, str]) -> int:
    """Run a container command as the kubelet would: expanded, then exec'd."""
    expanded = [k8s_expand(arg, env) for arg in argv]
    return subprocess.run(expanded, env={**os.environ, **env}, check=False).returncode


@pytest.mark.parametrize(("statuses", "expected_status", "ran"), [
    ((0, 0, 0), 0, 3),
    ((0, 7, 0), 7, 2),  # stops at the first failure, with its status
    ((0, 0, 3), 3, 3),
    ((129, 0, 0), 129, 1),
])
def test_a_command_list_runs_in_order_stops_at_the_first_failure_byte_for_byte(
    tmp_path: Path, statuses: tuple[int, ...], expected_status: int, ran: int
) -> None:
    names = [f"prog{n}" for n in range(len(statuses))]
    argvs = [(_recorder(tmp_path, name, status), *HOSTILE_ARGS[n:], f"arg of {name}")
             for n, (name, status) in enumerate(zip(names, statuses, strict=True))]
    argvs[1] = (argvs[1][0],)  # a command without arguments
    container = [escape_dollars(arg) for arg in command_argv(argvs)]
    assert _run_container(container, {"HOME": "/nowhere"}) == expected_status
    for n, name in enumerate(names):
        assert _recorded(tmp_path, name) == (list(argvs[n][1:]) if n < ran else None)


def test_a_single_command_is_its_argument_list_without_a_shell(tmp_path: Path) -> None:
    argv = (_recorder(tmp_path, "one", 5), *HOSTILE_ARGS)
    assert command_argv([argv]) == list(argv)
    assert _run_container([escape_dollars(a) for a in argv], {"HOME": "/x"}) == 5
    assert _recorded(tmp_path, "one") == list(HOSTILE_ARGS)


def test_the_script_references_its_arguments_only_by_number() -> None:
    shell, flag, script, zero, *rest = command_argv([("/bin/a", "$(x)"), ("/bin/b",)])
    assert (shell, flag, zero, rest) == ("/bin/sh", "-c", "sh", ["/bin/a", "$(x)", "/bin/b"])
    assert script == '(exec "${1}" "${2}") || exit\nexec "${3}"\n'


@pytest.mark.parametrize("program", ["echo", "eval", "exit", "set", "cd", "a=b"])
def test_a_program_named_like_a_shell_builtin_is_the_program_in_path(
    tmp_path: Path, program: str
) -> None:
    """A bare "${1}" would run sh's own echo (which reads backslashes), eval
    (which reads its argument as code), ..., and "a=b" would stay a word."""
    recorder = Path(_recorder(tmp_path, program, 4))
    argvs = [(program, "a\\nb", "$(id)"), (program, "c")]
    container = [escape_dollars(arg) for arg in command_argv(argvs)]
    path = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    assert _run_container(container, path) == 4
    assert _recorded(tmp_path, program) == ["a\\nb", "$(id)"]  # the first only: it failed
    assert recorder.exists()


def test_a_missing_program_stops_the_list_with_127(tmp_path: Path) -> None:
    later = _recorder(tmp_path, "later", 0)
    container = command_argv([(str(tmp_path / "nope"),), (later,)])
    assert _run_container(container, {}) == 127
    assert _recorded(tmp_path, "later") is None


@pytest.mark.parametrize("text", ["a\nb", " lead\n", "trail \nx", "x\n\n", "\n", "a\n  b\n",
                                  "tab\tx\ny", "é\n\x85", "\u2028\n", "$$(x)\n\"'", "\r\n"])
def test_the_yaml_stream_reads_back_exactly(text: str) -> None:
    assert list(yaml.safe_load_all(cronjobs.to_yaml([{"k": text}, {"n": 1}]))) == [
        {"k": text}, {"n": 1}]


# -- the objects ---------------------------------------------------------------


def _validated(obj: dict[str, Any]) -> client.V1CronJob:
    """The object read back into the client's models (their client-side
    validation on), which must serialize to the same mapping: no field the
    models do not know, none lost."""
    api = client.ApiClient()
    # (deserialize's public form takes an HTTP response, and its signature
    # differs between client versions; this is what it calls with the data)
    model = api._ApiClient__deserialize(json.loads(json.dumps(obj)), "V1CronJob")
    assert api.sanitize_for_serialization(model) == obj
    return model


def _export(site: Site, args: tuple[str, ...] = ()) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(
        run_job, ["--config", str(site.config_file), "export", "kubernetes", *args])
    objects = [o for o in yaml.safe_load_all(result.stdout) if o is not None]
    return result.exit_code, objects, result.stderr


def test_a_job_becomes_a_cronjob_with_its_run_settings(site: Site) -> None:
    site.configure(CLUSTER)
    site.job("nightly-report", """\
        name: Nightly report
        command:
          - /usr/bin/report --since '1 day ago' --out "$HOME/r.csv"
          - /usr/bin/upload /tmp/r.csv
        schedule: "30 2 * * mon-fri"
        timezone: Europe/Berlin
        timeout: 90
        environment: {LANG: C.UTF-8, PRICE: "$(five)"}
        tag: [reports, nightly]
        memory_max: 512M
        cpu_quota: 50
        """)
    site.job("manual", "name: M\ncommand: /bin/true\n")
    code, objects, stderr = _export(site)
    assert (code, stderr) == (0, "")
    [obj] = objects
    model = _validated(obj)
    assert (obj["apiVersion"], obj["kind"]) == ("batch/v1", "CronJob")
    assert model.metadata.name == "nightly-report"
    assert model.metadata.annotations == {"process-control/schedule": "30 2 * * mon-fri",
                                          "process-control/source": "nightly-report.yaml"}
    assert model.metadata.namespace == "batch"
    assert model.metadata.labels == {
        "team": "data", "example.org/cost-centre": "42", "tag.process-control/reports": "true",
        "tag.process-control/nightly": "true", "process-control/job": "nightly-report"}
    spec = model.spec
    assert (spec.schedule, spec.time_zone) == ("30 2 * * 1-5", "Europe/Berlin")
    assert (spec.concurrency_policy, spec.suspend, spec.starting_deadline_seconds) == (
        "Forbid", False, 60)
    assert spec.job_template.spec.backoff_limit == 0
    pod = spec.job_template.spec.template.spec
    assert spec.job_template.spec.template.metadata.labels == model.metadata.labels
    assert (pod.restart_policy, pod.active_deadline_seconds) == ("Never", 5400)
    assert (pod.service_account_name, pod.security_context.run_as_user) == ("jobs", 1000)
    assert pod.security_context.run_as_non_root is True
    [box] = pod.containers
    assert box.image == "registry.example/batch:1.4"
    assert [(e.name, k8s_expand(e.value, {"five": "5"})) for e in box.env] == [
        ("LANG", "C.UTF-8"), ("PRICE", "$(five)")]
    assert box.resources.limits == {"memory": "536870912", "cpu": "500m"}
    assert box.security_context.allow_privilege_escalation is False
    expanded = [k8s_expand(a, {"HOME": "/h"}) for a in box.command]
    assert expanded[4:] == ["/usr/bin/report", "--since", "1 day ago", "--out", "$HOME/r.csv",
                            "/usr/bin/upload", "/tmp/r.csv"]


def test_disabled_catch_up_retry_and_a_job_image(site: Site) -> None:
    site.configure(CLUSTER)
    site.job("j", """\
        name: J
        command: /bin/true
        schedule: "*/5 * * * *"
        disabled: true
        catch_up: true
        retry: {attempts: 3, delay: 0.1667, backoff: 2}
        image: registry.example/other@sha256:abc
        sandbox: false
        """)
    code, [obj], stderr = _export(site)
    model = _validated(obj)
    assert code == 0
    assert (model.spec.suspend, model.spec.starting_deadline_seconds) == (True, None)
    assert model.spec.job_template.spec.backoff_limit == 3
    [box] = model.spec.job_template.spec.template.spec.containers
    assert (box.image, box.security_context, box.command) == (
        "registry.example/other@sha256:abc", None, ["/bin/true"])
    assert stderr == ""


@pytest.mark.parametrize("retry", ["{attempts: 3, delay: 1}", "{attempts: 2, delay: 0.1667}",
                                   "{attempts: 7, delay: 0.1667, backoff: 2}"])
def test_retry_delays_kubernetes_does_not_wait_are_refused(site: Site, retry: str) -> None:
    # Kubernetes waits 10, 20, 40, ... s, at most 360 s: the 7th would be 640 s here
    site.configure(CLUSTER)
    site.job("j", f"name: J\ncommand: /bin/true\nschedule: '0 * * * *'\nretry: {retry}\n")
    code, objects, stderr = _export(site)
    assert (code, objects) == (1, [])
    assert stderr.splitlines()[0] == (
        f"{site.jobs}/j.yaml:4: retry: Kubernetes retries a failed pod after 10 s, then twice "
        "as long each time, up to 6 min: only `delay: 0.1667` (10 s) with `backoff: 2` and at "
        "most 6 attempts has the same meaning")


def test_keys_without_a_kubernetes_meaning_are_listed_one_line_each(site: Site) -> None:
    site.configure(CLUSTER)
    site.job("j", """\
        name: J
        command: /bin/true
        schedule: "0 * * * *"
        nice: 10
        io_class: idle
        random_delay: 5
        failmail: {from_address: a@b, to_address: c@d}
        slow_start_command: /bin/false
        stop_after_failures: 3
        logging: file
        """)
    code, objects, stderr = _export(site)
    assert (code, len(objects)) == (0, 1)
    keys = [re.match(r".*:\d+: (\S+): warning: not mapped to Kubernetes", line).group(1)
            for line in stderr.splitlines()]
    assert keys == ["nice", "io_class", "random_delay", "failmail", "slow_start_command",
                    "stop_after_failures", "logging"]


def test_output_dir_writes_one_file_per_job(site: Site, tmp_path: Path) -> None:
    site.configure(CLUSTER)
    for slug in ("a", "b.c"):
        site.job(slug, "name: X\ncommand: /bin/true\nschedule: '0 0 * * *'\n")
    out = tmp_path / "out"
    out.mkdir()
    code, objects, _ = _export(site, ("--output", str(out)))
    assert (code, objects) == (0, [])
    assert sorted(p.name for p in out.iterdir()) == ["a.yaml", "b.c.yaml"]
    [obj] = yaml.safe_load_all((out / "b.c.yaml").read_text())
    assert _validated(obj).metadata.name == "b-c"


def test_refusals_export_nothing_one_line_each(site: Site) -> None:
    site.configure("")  # no kubernetes mapping: no image
    site.job("Job", "name: X\ncommand: /bin/true\nschedule: '0 0 * * *'\nimage: r/i:1\n")
    site.job("job", "name: X\ncommand: /bin/true\nschedule: '0 0 * * *'\nimage: r/i:1\n")
    site.job("noimage", "name: X\ncommand: /bin/true\nschedule: '0 0 * * *'\n")
    site.job("tagged", "name: X\ncommand: /bin/true\nschedule: '0 0 * * *'\nimage: r/i:1\n"
                       "tag: 'two words'\ncpu_quota: 12.34\n")
    site.job("_x", "name: X\ncommand: /bin/true\nschedule: '0 0 * * *'\nimage: r/i:1\n")
    site.job("and", "name: X\ncommand: /bin/true\nschedule: '0 0 */2 * mon'\nimage: r/i:1\n")
    code, objects, stderr = _export(site)
    assert (code, objects) == (1, [])
    assert sorted(stderr.splitlines()) == sorted([
        f"{site.jobs}/_x.yaml:1: (file): the job name '_x' cannot be a Kubernetes label value "
        "(at most 63 letters, digits, '-_.', starting and ending with a letter or digit)",
        f"{site.jobs}/and.yaml:3: schedule: '0 0 */2 * mon': cron fires only on days matching "
        "both day-of-month and day-of-week (one of them starts with '*'), which robfig/cron "
        "(Kubernetes) cannot express; it ANDs the two fields only when one is a bare '*' "
        "(for Kubernetes)",
        f"{site.jobs}/job.yaml:1: (file): jobs 'Job' and 'job' would both be the CronJob 'job': "
        "rename one",
        f"{site.jobs}/noimage.yaml:1: image: no container image: set image here or "
        "kubernetes.image in the global configuration",
        f"{site.jobs}/tagged.yaml:5: tag: the tag 'two words' cannot be a Kubernetes label name "
        "(at most 63 letters, digits, '-_.')",
        f"{site.jobs}/tagged.yaml:6: cpu_quota: 12.34% is not a whole number of millicores "
        "(Kubernetes' unit: 0.1%)",
    ])


def test_names_are_dns_labels_short_enough_for_their_jobs() -> None:
    long = "A_very.Long-job-" * 6  # 96 characters: slugs have at most 100
    assert dns_name(long).startswith("a-very-long-job-a-very-long-job-")
    assert dns_name("Nightly_Report.v2") == "nightly-report-v2"
    for slug in ("x", "Nightly_Report.v2", long, "9-lives", "a..b__c"):
        name = dns_name(slug)
        assert DNS_LABEL.match(name) and len(name) <= MAX_NAME, name
    several = cronjobs.cronjob_names(long, 12)
    assert len(set(several)) == 12 and several[11].endswith("-12")
    assert all(DNS_LABEL.match(n) and len(n) <= MAX_NAME for n in several), several
    assert cronjobs.cronjob_names("a", 2) == ["a-1", "a-2"]


def test_several_schedules_one_cronjob_each_all_labelled_with_the_slug(site: Site) -> None:
    site.configure(CLUSTER)
    site.job("split", "name: S\ncommand: /bin/true\nschedule: '0 0 1 * mon'\n")

    def two(schedule: CronSchedule) -> tuple[str, ...]:  # a translation that splits
        return ("0 0 1 * *", "0 0 * * 1")

    result = export(site.config(), load_jobs(site.config()).jobs, two)
    [(slug, objects)] = result.objects
    assert slug == "split"
    assert [(_validated(o).metadata.name, o["spec"]["schedule"],
             o["metadata"]["labels"]["process-control/job"]) for o in objects] == [
        ("split-1", "0 0 1 * *", "split"), ("split-2", "0 0 * * 1", "split")]


def test_truncated_names_that_collide_name_both_slugs(site: Site) -> None:
    site.configure(CLUSTER)
    stem = "x" * MAX_NAME
    for slug in (stem + "a", stem + "b"):
        site.job(slug, "name: S\ncommand: /bin/true\nschedule: '0 0 * * *'\n")
    result = export(site.config(), load_jobs(site.config()).jobs, cronjob_schedules)
    [problem] = result.problems
    assert f"jobs '{stem}a' and '{stem}b' would both be the CronJob '{stem}'" in str(problem)


# -- the kubernetes mapping of the global configuration ------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("kubernetes: {run_as_user: app}\n", "2: kubernetes.run_as_user: expected a numeric uid"),
    ("kubernetes:\n  namespace: batch\n  run_as_user: 0\n",
     "4: kubernetes.run_as_user: jobs would run as root"),
    ("kubernetes: {namespace: Batch}\n", "2: kubernetes.namespace: 'Batch' is not a namespace"),
    ("kubernetes: {image: 'a b'}\n", "2: kubernetes.image: 'a b' is not an image reference"),
    ("kubernetes: {labels: {process-control/job: x}}\n",
     "2: kubernetes.labels: 'process-control/job': the prefixes"),
    ("kubernetes: {labels: {team: 'a b'}}\n", "2: kubernetes.labels.team: 'a b' is not a"),
    ("kubernetes: {imgae: x}\n", "2: kubernetes.imgae: unknown key"),
    ("kubernetes: [x]\n", "2: kubernetes: expected a mapping"),
])
def test_bad_kubernetes_settings_are_one_line(site: Site, text: str, expected: str) -> None:
    site.configure(text)
    with pytest.raises(PcError) as err:
        site.config()
    [problem] = err.value.problems
    assert str(problem).startswith(f"{site.config_file}:{expected}"), str(problem)


def test_root_in_the_container_needs_allow_root(site: Site) -> None:
    site.configure("user: root\nallow_root: true\nkubernetes: {run_as_user: 0}\n")
    assert site.config().kubernetes == Kubernetes(run_as_user=0)


def test_time_zone_is_kept_with_a_client_that_predates_it(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian 12's python3-kubernetes (22.6) has no CronJobSpec.time_zone."""
    site.configure(CLUSTER)
    site.job("j", "name: J\ncommand: /bin/true\nschedule: '0 3 * * *'\ntimezone: Asia/Tokyo\n")
    older = {k: v for k, v in client.V1CronJobSpec.attribute_map.items() if k != "time_zone"}
    monkeypatch.setattr(client.V1CronJobSpec, "attribute_map", older)
    [(_slug, [obj])] = export(site.config(), load_jobs(site.config()).jobs,
                              cronjob_schedules).objects
    assert (obj["spec"]["schedule"], obj["spec"]["timeZone"]) == ("0 3 * * *", "Asia/Tokyo")


def test_without_the_client_one_line_says_how_to_get_it(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.configure(CLUSTER)
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # import fails
    code, objects, stderr = _export(site)
    assert (code, objects) == (2, [])
    assert stderr == ("run-job: the Kubernetes client is missing: pip install "
                      "'pc-systemd[kubernetes]' (Debian: apt install python3-kubernetes)\n")


def test_a_job_with_credentials_is_refused(site: Site) -> None:
    site.configure(CLUSTER)
    site.job("sec", "name: X\ncommand: /bin/true\nschedule: '0 0 * * *'\ncredentials: token\n")
    code, objects, stderr = _export(site)
    assert (code, objects) == (1, [])
    assert stderr == (f"{site.jobs}/sec.yaml:4: credentials: the host's credentials_directory "
                      "is not in the cluster: give the job a Kubernetes Secret instead (it "
                      "would run without its credentials)\n")
