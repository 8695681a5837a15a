"""rotate.yml through ansible-runner, laid out as AWX lays out a job (issue 12 item 4).

The private data directory is what AWX's task runner hands to ansible-runner:

- ``project/``: the project checkout (here a symlink to this repository);
- ``inventory/hosts``: an executable inventory script that prints the inventory as AWX stores it, i.e. what
  ``ansible-inventory --list --export`` imported from the GitOps inventory source (inventory.example/lab), with the
  group variables an AWX inventory maps from credentials (docs/awx.md, "Inventory variables from credentials");
- ``env/envvars``: the credential injectors rendered as AWX renders them (test_awx_credentials.render) from the
  credential types in extensions/awx/credential_types, plus JOB_ID as AWX sets it;
- ``env/extravars``: the job template's extra vars (the byoc_rollout_serial template of playbooks/awx_configure.yml)
  and the survey answers;
- ``artifacts/<ident>/``: what ansible-runner writes (job_events, stdout, status, rc).

Against a private lab (bind, pebble, genesys, the four SBCs), the test checks the artifacts: the job events are
there (playbook start, every play, runner_on_ok for every host, the stats), no event and no other artifact carries
any secret (every injected value and every lab password, grepped as text), and the report files (report.json with
every group renewed, the Prometheus textfile) are written. The secrets only reached the devices through the
injected environment: the lab inventory's own credentials are replaced by environment lookups for the hosts the
injected credentials serve, so a run that succeeds proves that AWX's injection feeds the pipeline.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from byoc_harness import REPO, ansible_env  # noqa: E402  (on sys.path via conftest)
from byoclab.components import select  # noqa: E402
from byoclab.core import Lab  # noqa: E402
from test_awx_credentials import load_types, render  # noqa: E402

PARTS = ["bind", "pebble", "genesys", "audiocodes", "ribbon_core", "ribbon_edge"]
GROUPS = ["grp_mediant_ha", "grp_mediant_sa", "grp_sbc_core", "grp_sbc_edge"]
BIN = Path(sys.executable).parent


def env_lookup(name: str) -> str:
    return "{{ lookup('ansible.builtin.env', '%s') }}" % name


@pytest.fixture(scope="module")
def job():
    directory = Path(tempfile.mkdtemp(prefix="byoc-awx-runner-"))
    lab = Lab(directory / "lab")
    try:
        lab.up(select(PARTS))
        c = lab.components
        base_env = ansible_env({"BYOC_LAB_JSON": str(lab.json_file)})
        base_env.pop("ANSIBLE_STDOUT_CALLBACK", None)  # ansible-runner's own event callback, as in AWX
        # the Genesys org's trunks (lab set-up, not part of the job)
        setup = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(REPO / "inventory.example" / "lab"),
                                str(REPO / "playbooks" / "demo_lab.yml")], capture_output=True, text=True,
                               env=base_env, cwd=REPO, timeout=900, check=False)
        assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-2000:]

        pdd = directory / "job"
        (pdd / "env").mkdir(parents=True)
        (pdd / "inventory").mkdir()
        os.symlink(REPO, pdd / "project")

        # -- the credentials attached to the job template, rendered as AWX renders them -------------------------
        types = load_types()
        sa = c["audiocodes"]["devices"]["mediant-sa"]
        core = c["ribbon_core"]
        gen = c["genesys"]
        tsig = c["bind"]["tsig"]
        inputs = {
            "genesys_cloud": {"client_id": gen["client_id"], "client_secret": gen["client_secret"]},
            "audiocodes": {"username": sa["username"], "password": sa["password"]},
            "ribbon_core": {"username": core["credentials"]["username"], "password": core["credentials"]["password"],
                            "sftp_username": core["sftp"]["username"], "sftp_password": core["sftp"]["password"],
                            "pkcs12_passphrase": "awx-runner-p12-passphrase"},
            "dns_tsig": {"key_secret": tsig["secret"]},
            "store": {"passphrase": "awx-runner-store-passphrase"},
        }
        envvars: dict[str, str] = {"JOB_ID": "4242"}
        for stem, values in inputs.items():
            envvars.update(render(types[stem], values, pdd)["env"])
        (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))

        # -- the inventory as AWX imported it from the GitOps source, with credential-mapped variables ----------
        proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(REPO / "inventory.example" / "lab"),
                               "--list", "--export"], capture_output=True, text=True, env=base_env, cwd=REPO,
                              timeout=300, check=True)
        inventory = json.loads(proc.stdout)
        groups = inventory

        def group_vars(name: str) -> dict:
            return groups.setdefault(name, {}).setdefault("vars", {})

        all_vars = group_vars("all")
        assert "byoc_genesys" in all_vars, sorted(all_vars)  # --export keeps group_vars unrendered, as AWX stores them
        all_vars["byoc_genesys"] = dict(all_vars["byoc_genesys"], client_id=env_lookup("GENESYS_CLOUD_CLIENT_ID"),
                                        client_secret=env_lookup("GENESYS_CLOUD_CLIENT_SECRET"))
        all_vars["byoc_dns"] = json.loads(json.dumps(all_vars["byoc_dns"]))
        all_vars["byoc_dns"]["options"]["key_secret"] = env_lookup("BYOC_TSIG_KEY_SECRET")
        group_vars("grp_mediant_sa").update(byoc_username=env_lookup("AUDIOCODES_USERNAME"),
                                            byoc_password=env_lookup("AUDIOCODES_PASSWORD"))
        group_vars("grp_sbc_core").update(
            byoc_username=env_lookup("RIBBON_CORE_USERNAME"), byoc_password=env_lookup("RIBBON_CORE_PASSWORD"),
            byoc_ribbon_sftp_username=env_lookup("RIBBON_SFTP_USERNAME"),
            byoc_ribbon_sftp_password=env_lookup("RIBBON_SFTP_PASSWORD"),
            byoc_ribbon_pkcs12_passphrase=env_lookup("RIBBON_PKCS12_PASSPHRASE"))
        script = pdd / "inventory" / "hosts"
        (pdd / "inventory" / "inventory.json").write_text(json.dumps(inventory))
        script.write_text(f"#!{sys.executable}\nimport sys\n"
                          f"sys.stdout.write(open({str(pdd / 'inventory' / 'inventory.json')!r}).read())\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

        # -- the job template's extra vars and the survey answers -----------------------------------------------
        report_dir = pdd / "report"
        extravars = {
            "byoc_rollout_serial": "{{ [byoc_canary_size | default(1) | int, 10] }}",  # awx_configure.yml's template
            "byoc_force": "no", "byoc_canary_size": 1,                                # survey answers
            "byoc_store": {"backend": "filesystem", "path": str(directory / "store")},
            "byoc_report_dir": str(report_dir),
        }
        (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
        (pdd / "env" / "settings").write_text(yaml.safe_dump({"suppress_ansible_output": True}))

        runner_env = dict(base_env)
        for name in envvars:
            runner_env.pop(name, None)  # only what env/envvars injects
        run = subprocess.run([str(BIN / "ansible-runner"), "run", str(pdd), "-p", "playbooks/rotate.yml",
                              "--ident", "awx-job"], capture_output=True, text=True, env=runner_env, cwd=directory,
                             timeout=1800, check=False)
        # the markers: every value of a field that its credential type marks secret (a client id or a user name is
        # not one, and may be logged), by the variable that carries it, and the lab's own passwords
        secret_fields = {stem: {f["id"] for f in types[stem]["inputs"]["fields"] if f.get("secret")} for stem in inputs}
        secrets = {f"{stem}.{k}": v for stem, values in inputs.items() for k, v in values.items()
                   if k in secret_fields[stem] and v}
        secrets.update({"lab mediant-ha password": c["audiocodes"]["devices"]["mediant-ha"]["password"],
                        "lab ribbon_edge password": c["ribbon_edge"]["credentials"]["password"],
                        "lab ribbon_core initial passphrase": core["initial"]["passphrase"]})
        yield {"run": run, "pdd": pdd, "artifacts": pdd / "artifacts" / "awx-job", "report_dir": report_dir,
               "secrets": secrets, "lab": lab, "store": directory / "store"}
    finally:
        lab.down()
        shutil.rmtree(directory, ignore_errors=True)


def events(job) -> list[dict]:
    files = sorted((job["artifacts"] / "job_events").glob("*.json"), key=lambda p: int(p.name.split("-", 1)[0]))
    return [json.loads(p.read_text()) for p in files]


def test_the_job_succeeds_and_writes_its_artifacts(job):
    art = job["artifacts"]
    stdout = (art / "stdout").read_text() if (art / "stdout").exists() else job["run"].stdout
    assert job["run"].returncode == 0, stdout[-6000:] + job["run"].stderr[-2000:]
    assert (art / "rc").read_text().strip() == "0" and (art / "status").read_text().strip() == "successful"


def test_job_events_cover_every_play_host_and_the_stats(job):
    evs = events(job)
    kinds = [e["event"] for e in evs]
    assert kinds.index("playbook_on_start") < kinds.index("playbook_on_stats"), kinds[:5]
    plays = [e["event_data"]["play"] for e in evs if e["event"] == "playbook_on_play_start"]
    assert "Rotate, canary first, then in batches" in plays, plays
    ok_hosts = {e["event_data"]["host"] for e in evs if e["event"] == "runner_on_ok"}
    assert {"mediant_ha", "mediant_sa", "sbc_core", "sbc_edge"} <= ok_hosts
    assert not [e for e in evs if e["event"] in ("runner_on_failed", "runner_on_unreachable")
                and not e["event_data"].get("ignore_errors")]
    stats = next(e for e in evs if e["event"] == "playbook_on_stats")["event_data"]
    assert not stats["failures"] and not stats["dark"], stats
    # the canary: the survey's canary size became rotate.yml's serial (one host in the first batch)
    batches = [e for e in evs if e["event"] == "playbook_on_play_start"
               and e["event_data"]["play"] == "Rotate, canary first, then in batches"]
    assert len(batches) >= 2, len(batches)


def test_no_event_or_artifact_carries_a_secret(job):
    secrets = job["secrets"]
    assert len(secrets) >= 10, sorted(secrets)
    leaks = []
    # artifacts/<ident>/command is ansible-runner's record of its INPUT: the command line and the whole process
    # environment, env/envvars included (AWX keeps it in the private data directory that it deletes after the job,
    # and never shows it). It must hold every injected secret, which also proves that the grep below sees them.
    command = (job["artifacts"] / "command").read_text()
    injected = [name for name, value in secrets.items() if value in command]
    assert len(injected) >= 7, injected
    for path in job["artifacts"].rglob("*"):
        if path.is_file() and path.name != "command":
            text = path.read_text(errors="replace")
            leaks += [(str(path.relative_to(job["artifacts"])), name) for name, value in secrets.items() if value in text]
    for path in job["report_dir"].rglob("*"):
        text = path.read_text(errors="replace") if path.is_file() else ""
        leaks += [(path.name, name) for name, value in secrets.items() if value in text]
    assert not leaks, (sorted({name for _path, name in leaks}), leaks[:5])
    # the grep can see: the events do carry the run's non-secret values (hosts, the lab's SIP names)
    text = "".join(p.read_text() for p in (job["artifacts"] / "job_events").glob("*.json"))
    assert "mediant_sa" in text and job["lab"].components["ribbon_core"]["sip_tls"]["name"] in text


def test_report_files(job):
    report = json.loads((job["report_dir"] / "report.json").read_text())
    assert sorted(g["group"] for g in report["groups"]) == GROUPS
    assert all(g["status"] == "renewed" for g in report["groups"]), report["groups"]
    prom = (job["report_dir"] / "byoc_certificates.prom").read_text()
    assert "byoc_certificates_last_run_success 1" in prom.splitlines(), prom[-800:]
    for group in GROUPS:  # one status line per group says renewed
        assert any(line.startswith("byoc_certificates_group_status{") and f'"{group}"' in line
                   and 'status="renewed"' in line and line.endswith(" 1") for line in prom.splitlines()), group
    # the store was written with the injected passphrase: its keys are not readable without it
    for group in GROUPS:
        assert (job["store"] / group / "state.json").is_file(), group
