"""The cluster templates parse and run the right commands.

``ray up`` YAMLs: validated against Ray's own cluster-launcher schema (the same
``prepare_config`` + ``validate_config`` ``ray up`` runs), each shell command parses, the head
starts with token auth and a loopback dashboard, the token file reaches every node.
KubeRay: a RayJob with token auth from a Secret, no exposed Service, an experiment that
``search.experiment`` accepts. SLURM: ``bash -n``, then the script is run for real with stub
``srun``/``scontrol``/``ray``/``paretotune`` that log what they are asked to do.
"""

from __future__ import annotations

import copy
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from search.experiment import experiment_from_dict

TEMPLATES = Path(__file__).resolve().parents[2] / "cluster" / "templates"
RAY_UP = ["ray-up-aws.yaml", "ray-up-onprem.yaml"]


def _load(name: str) -> Any:
    return yaml.safe_load((TEMPLATES / name).read_text())


def _bash_parses(command: str) -> None:
    result = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
    assert result.returncode == 0, f"{command!r}: {result.stderr}"


def _ray_start(commands: list[str]) -> list[str]:
    """The argv of the ``ray start`` in a list of shell commands (env assignments kept)."""
    for command in commands:
        for part in command.split(";"):
            argv = shlex.split(part)
            if "ray" in argv and "start" in argv:
                return argv
    raise AssertionError(f"no `ray start` in {commands}")


# ---- ray up ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_config_passes_rays_own_validation(name: str) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _load(name)
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]


@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_commands_parse(name: str) -> None:
    config = _load(name)
    keys = (
        "initialization_commands",
        "setup_commands",
        "head_setup_commands",
        "worker_setup_commands",
        "head_start_ray_commands",
        "worker_start_ray_commands",
    )
    # a template without setup or start commands would parse vacuously: each must have them
    for key in ("setup_commands", "head_start_ray_commands", "worker_start_ray_commands"):
        assert config.get(key), f"{name}: no {key}"
    parsed = 0
    for key in keys:
        for command in config.get(key) or []:
            _bash_parses(command)
            parsed += 1
    assert parsed >= 3


@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_head_and_workers_use_token_auth_and_a_loopback_dashboard(name: str) -> None:
    config = _load(name)
    head = _ray_start(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head
    assert "--head" in head
    assert "--dashboard-host=127.0.0.1" in head
    worker = _ray_start(config["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in worker
    assert "--address=$RAY_HEAD_IP:6379" in worker
    text = (TEMPLATES / name).read_text()
    assert "0.0.0.0" not in text
    # the token file (not a token) goes to every node; shells get RAY_AUTH_MODE=token too
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert any("RAY_AUTH_MODE=token" in c for c in config["setup_commands"])
    assert any("chmod 600 ~/.ray/auth_token" in c for c in config["setup_commands"])


@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_installs_the_project_without_syncing_the_venv(name: str) -> None:
    config = _load(name)
    assert config["file_mounts"]["~/paretotune"] == "."
    assert {".venv", ".git", "results"} <= set(config["rsync_exclude"])
    assert any("pip install" in c and "$HOME/paretotune" in c for c in config["setup_commands"])


def test_aws_image_matches_the_pinned_ray() -> None:
    import ray

    config = _load("ray-up-aws.yaml")
    assert config["docker"]["image"].startswith(f"rayproject/ray:{ray.__version__}-")
    assert config["provider"]["type"] == "aws"


def test_onprem_lists_hosts() -> None:
    provider = _load("ray-up-onprem.yaml")["provider"]
    assert provider["type"] == "local" and provider["head_ip"] and provider["worker_ips"]


# ---- KubeRay ---------------------------------------------------------------------------------
def _kuberay() -> dict[str, Any]:
    docs = list(yaml.safe_load_all((TEMPLATES / "kuberay-rayjob.yaml").read_text()))
    return {doc["kind"]: doc for doc in docs}


def test_kuberay_rayjob_runs_a_sweep_with_token_auth() -> None:
    import ray

    docs = _kuberay()
    assert set(docs) == {"ConfigMap", "RayJob", "PersistentVolumeClaim"}
    job = docs["RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["bash", "-c"]
    _bash_parses(argv[2])
    # the sweep the first time; a retry (after a preemption) resumes what the volume holds
    first = "exec paretotune run /etc/paretotune/experiment.yaml --output /mnt/results/cifar10-k8s"
    assert first in argv[2]
    assert "if [ -f /mnt/results/cifar10-k8s/experiment.yaml ]" in argv[2]
    assert "then exec paretotune resume /mnt/results/cifar10-k8s" in argv[2]
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    assert cluster["authOptions"] == {"mode": "token", "secretName": "paretotune-ray-token"}
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    head = cluster["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"  # reached with kubectl port-forward only
    containers = [head["template"]["spec"]["containers"][0]] + [
        group["template"]["spec"]["containers"][0] for group in cluster["workerGroupSpecs"]
    ]
    for container in containers:
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/mnt/results" in mounts  # every node writes trial checkpoints there
        assert container["image"] == containers[0]["image"]
    assert docs["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_kuberay_gives_the_driver_time_to_stop_and_retries_by_resuming() -> None:
    job = _kuberay()["RayJob"]
    assert job["spec"]["backoffLimit"] >= 1
    pod = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 120
    command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    _bash_parses(command[2])
    assert "kill -TERM" in command[2] and "paretotune (run|resume)" in command[2]


def test_kuberay_holds_no_secret_values() -> None:
    text = (TEMPLATES / "kuberay-rayjob.yaml").read_text()
    job = _kuberay()["RayJob"]
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    for env in head.get("env", []):
        assert "value" not in env, f"{env['name']} must come from a Secret"
        assert "secretKeyRef" in env["valueFrom"]
    assert "RAY_AUTH_TOKEN" not in text.split("\napiVersion")[1]  # KubeRay sets it from the Secret
    assert "LoadBalancer" not in text and "NodePort" not in text and "Ingress" not in text


def test_kuberay_experiment_is_valid() -> None:
    experiment = yaml.safe_load(_kuberay()["ConfigMap"]["data"]["experiment.yaml"])
    exp = experiment_from_dict(experiment)
    assert exp.storage and exp.storage.startswith("postgresql://")
    assert ":" not in exp.storage.split("//", 1)[1].split("@")[0]  # no password in the URL
    assert 0 < exp.resources.gpus_per_trial < 1 and exp.resources.max_failures >= 1


def test_dockerfile_installs_the_project_on_the_pinned_ray_image() -> None:
    import ray

    lines = [
        line.strip()
        for line in (TEMPLATES / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == f"FROM rayproject/ray:{ray.__version__}-py311-gpu"
    copied = [line.split()[-2] for line in lines if line.startswith("COPY")]
    assert {"models", "spaces", "search", "cluster"} <= set(copied)
    assert ".venv" not in " ".join(copied) and "." not in copied
    assert any(line.startswith("RUN pip install") and '".[postgres]"' in line for line in lines)


# ---- SLURM -------------------------------------------------------------------------------------
SBATCH = TEMPLATES / "slurm-sweep.sbatch"


def test_sbatch_parses_and_asks_slurm_for_nodes() -> None:
    result = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    directives = [line for line in SBATCH.read_text().splitlines() if line.startswith("#SBATCH")]
    assert any("--nodes=" in d for d in directives)
    assert any("--ntasks-per-node=1" in d for d in directives)


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fake_slurm(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Stub SLURM/Ray/paretotune commands that log their argv and auth environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    record = (
        'echo "$(basename "$0") $* | mode=${RAY_AUTH_MODE:-} '
        'token=${RAY_AUTH_TOKEN:+set} address=${RAY_ADDRESS:-}" >> "$CALL_LOG"\n'
    )
    _stub(bin_dir, "scontrol", record + 'printf "gpu-a\\ngpu-b\\ngpu-c\\n"\n')
    # srun runs its command in place (as on the allocated node)
    _stub(
        bin_dir,
        "srun",
        record + 'while [[ "$1" == -* ]]; do [ "$1" = -w ] && shift; shift; done\nexec "$@"\n',
    )
    _stub(bin_dir, "hostname", record + 'echo "10.20.30.40"\n')
    # `ray start --block` blocks until the script stops it
    _stub(bin_dir, "ray", record + "exec sleep 300\n")
    real_python = sys.executable
    # `python -m cluster.local wait-nodes ADDR N` returns once N `ray start` calls are logged
    wait_nodes = """
        if [ "$1" = "-m" ]; then
            for _ in $(seq 100); do
                [ "$(grep -c '^ray start' "$CALL_LOG")" -ge "$5" ] && exit 0
                sleep 0.1
            done
            exit 1
        fi
    """
    _stub(bin_dir, "python", record + wait_nodes + f'exec {real_python} "$@"\n')
    _stub(bin_dir, "paretotune", record + 'exit "${FAKE_SWEEP_EXIT:-0}"\n')
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CALL_LOG": str(log),
        "PARETOTUNE_VENV": str(venv),
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "gpu-[a-c]",
        "SLURM_SUBMIT_DIR": str(tmp_path),
        "SLURM_CPUS_PER_TASK": "8",
        "SLURM_GPUS_PER_TASK": "1",
        "EXPERIMENT": "my-sweep.yaml",
        "OUTPUT": "/shared/results/my-sweep",
    }
    return log, env


def _run_sbatch(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SBATCH)], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_sbatch_starts_head_and_workers_runs_the_sweep_and_stops_ray(
    fake_slurm: tuple[Path, dict[str, str]],
) -> None:
    log, env = fake_slurm
    result = _run_sbatch(env)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    commands = [c.split(" | ")[0] for c in calls]
    auth = [c.split(" | ")[1] for c in calls]

    def index(prefix: str) -> int:
        return next(i for i, c in enumerate(commands) if c.startswith(prefix))

    head = index("ray start --head")
    head_argv = commands[head].split()
    assert "--block" in head_argv and "--dashboard-host=127.0.0.1" in head_argv
    assert "--node-ip-address=10.20.30.40" in head_argv and "--port=6379" in head_argv
    assert "--num-cpus=8" in head_argv and "--num-gpus=1" in head_argv
    assert "--temp-dir=/tmp/ray-paretotune-4242" in head_argv
    workers = [i for i, c in enumerate(commands) if c.startswith("ray start --block --address")]
    assert len(workers) == 2  # gpu-b and gpu-c
    for i in workers:
        assert "--address=10.20.30.40:6379" in commands[i].split()
    srun_targets = [c.split()[c.split().index("-w") + 1] for c in commands if c.startswith("srun")]
    assert srun_targets[:2] == ["gpu-a", "gpu-a"]  # hostname, then the head
    assert sorted(srun_targets[2:]) == ["gpu-b", "gpu-c"]  # one worker per other node
    wait_one = index("python -m cluster.local wait-nodes 10.20.30.40:6379 1")
    wait_all = index("python -m cluster.local wait-nodes 10.20.30.40:6379 3")
    sweep = index("paretotune run")
    # the stub wait-nodes returns only once that many `ray start` calls are logged, so:
    # workers start after the head has joined, and the sweep after every node has
    assert max(head, wait_one) < min(workers)
    assert max(*workers, wait_all) < sweep
    assert commands[sweep] == "paretotune run my-sweep.yaml --output /shared/results/my-sweep"
    assert "address=10.20.30.40:6379" in calls[sweep]
    for i in [head, *workers, sweep]:
        assert "mode=token token=set" in auth[i]  # every Ray process and the driver: token auth


def test_sbatch_never_prints_the_token_and_stops_every_ray_step(
    fake_slurm: tuple[Path, dict[str, str]],
) -> None:
    log, env = fake_slurm
    env["RAY_AUTH_TOKEN"] = "given-token-0123456789abcdef0123456789"
    result = _run_sbatch(env)
    assert result.returncode == 0
    assert env["RAY_AUTH_TOKEN"] not in result.stdout + result.stderr + log.read_text()
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    stubs = [pid for pid in pids if _is_our_sleep(pid, env["CALL_LOG"])]
    assert not stubs, "a `ray start --block` step was left running"


def _is_our_sleep(pid: int, marker: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"CALL_LOG={marker}".encode() in environ.split(b"\0")


def test_sbatch_asks_for_time_to_stop() -> None:
    directives = [line for line in SBATCH.read_text().splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --signal=B:TERM@120" in directives


def test_sbatch_resumes_the_sweep_its_output_holds(
    fake_slurm: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    log, env = fake_slurm
    out = tmp_path / "results" / "my-sweep"
    out.mkdir(parents=True)
    (out / "experiment.yaml").write_text("name: my-sweep\n")
    env["OUTPUT"] = str(out)
    assert _run_sbatch(env).returncode == 0
    sweeps = [c.split(" | ")[0] for c in log.read_text().splitlines() if c.startswith("paretotune")]
    assert sweeps == [f"paretotune resume {out}"]


def test_sbatch_job_array_tasks_share_one_output(
    fake_slurm: tuple[Path, dict[str, str]],
) -> None:
    log, env = fake_slurm
    del env["OUTPUT"]
    env.update(SLURM_ARRAY_JOB_ID="4200", SLURM_JOB_ID="4242")
    assert _run_sbatch(env).returncode == 0
    sweep = next(c for c in log.read_text().splitlines() if c.startswith("paretotune"))
    assert sweep.split(" | ")[0].endswith(
        f"--output {env['SLURM_SUBMIT_DIR']}/results/paretotune-4200"
    )


def test_sbatch_hands_sigterm_to_the_sweep_and_exits_with_its_code(
    fake_slurm: tuple[Path, dict[str, str]],
) -> None:
    """SLURM's --signal=B:TERM goes to the batch script; the driver must get it."""
    log, env = fake_slurm
    _stub(
        log.parent / "bin",
        "paretotune",
        'echo "paretotune $* | started" >> "$CALL_LOG"\n'
        'trap \'kill $!; echo "paretotune got TERM" >> "$CALL_LOG"; exit 143\' TERM\n'
        "sleep 300 & wait $!\n",
    )
    script = subprocess.Popen(
        ["bash", str(SBATCH)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while "paretotune run" not in (log.read_text() if log.exists() else ""):
            assert script.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        script.send_signal(signal.SIGTERM)
        out, _ = script.communicate(timeout=60)
    finally:
        if script.poll() is None:
            script.kill()
    assert script.returncode == 143
    assert "paretotune got TERM" in log.read_text()
    assert "sweep finished with exit code 143" in out


def test_sbatch_exits_with_the_sweeps_exit_code(
    fake_slurm: tuple[Path, dict[str, str]],
) -> None:
    _, env = fake_slurm
    env["FAKE_SWEEP_EXIT"] = "5"
    result = _run_sbatch(env)
    assert result.returncode == 5
    assert "sweep finished with exit code 5" in result.stdout
