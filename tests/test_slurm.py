"""profiles/slurm against Snakemake's dry-run and against a real single-node SLURM cluster.

The dry-run tests need only the slurm executor plugin. The `slurm`-marked tests bring up
slurmctld + slurmd + munge through tests/slurm/cluster.sh (root and a network namespace
needed; elsewhere they skip) and run the toy workflow in tests/slurm/toy, whose rules borrow
the real rule names so that the project's profile applies to it unchanged.
"""

from __future__ import annotations

import filecmp
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import yaml
from configs import tiny_built_model

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "tests" / "slurm" / "cluster.sh"
TOY = REPO / "tests" / "slurm" / "toy"
SLURM_PROFILE = REPO / "profiles" / "slurm"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
UNSUPPORTED = 3  # cluster.sh: this machine cannot host the cluster
RUN_TIMEOUT_S = 300
GPU_RULES = {
    "build_embedded_clip",
    "extract_image",
    "embed_text",
    "train_sae",
    "eval_zeroshot",
    "encode_features",
}
CPU_RULES = {"prepare_dataset", "eval_reconstruction", "collages", "name_by_vocab"}
LOCAL_RULES = {"results_table", "report"}
# The CI node announces more than the machine has, so that the real workflow's requests fit.
# Two fake GPUs let two GPU jobs overlap, as they would on a real multi-GPU node.
NODE_ENV = {"SLURM_CI_CPUS": "16", "SLURM_CI_MEM_MB": "65536", "SLURM_CI_FAKE_GPUS": "2"}
# The demo workflow cut down to one model layer, dataset and SAE, each as small as the schema
# allows; run to the report, every rule but the two local aggregates goes through SLURM.
REAL_CI_CONFIG = {
    "vocabulary": "config/vocab/concepts_en_ru.tsv",
    "models": {"tiny": tiny_built_model()},
    "datasets": {
        "shapes": {
            "source": "synthetic",
            "label_by": "shape",
            "n_train": 64,
            "n_test": 32,
            "seed": 1,
            "templates": ["a photo of a {}."],
        }
    },
    "saes": {
        "topk": {
            "arch": "topk",
            "k": 4,
            "expansion": 2,
            "batch_size": 32,
            "epochs": 1,
            "warmup_frac": 0.5,
            "val_every": 1,
        }
    },
}


def require_plugin() -> None:
    """A missing plugin is a broken install (it belongs to the test dependencies), not a skip."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail("pip install 'snakemake-executor-plugin-slurm>=2.8,<3' to test profiles/slurm")


def profile() -> dict:
    return yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())


def partitions() -> list[str]:
    """Partition names the profile uses, the CPU default first (the cluster's default)."""
    prof = profile()
    names = [prof["default-resources"]["slurm_partition"]]
    for resources in prof["set-resources"].values():
        if resources.get("slurm_partition") not in names:
            names.append(resources["slurm_partition"])
    return names


def job_resources(dry_run_output: str) -> dict[str, list[dict[str, str]]]:
    """Rule name -> the resources of each of its jobs, read from `snakemake -n` output."""
    jobs: dict[str, list[dict[str, str]]] = {}
    rule = None
    for line in dry_run_output.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = match.group(1)
        elif rule and (match := re.match(r"^\s+resources: (.*)$", line)):
            pairs = (item.split("=", 1) for item in match.group(1).split(", "))
            jobs.setdefault(rule, []).append(dict(pairs))
            rule = None
    return jobs


def asks_for_gpu(resources: dict[str, str]) -> bool:
    return int(resources.get("gpu", "0")) > 0 or "gpu" in resources.get("gres", "")


def dry_run(workdir: Path, *targets: str) -> str:
    result = subprocess.run(
        [SNAKEMAKE, "--workflow-profile", SLURM_PROFILE, "-n", "--forceall", *targets],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_profile_marks_exactly_the_gpu_rules() -> None:
    gpu_in_profile = {
        rule for rule, resources in profile()["set-resources"].items() if resources.get("gpu")
    }
    assert gpu_in_profile == GPU_RULES
    assert profile()["slurm-status-command"] == "squeue"


def test_toy_dry_run_gives_gpu_only_to_gpu_rules(tmp_path: Path) -> None:
    require_plugin()
    shutil.copytree(TOY, tmp_path / "toy")
    jobs = job_resources(dry_run(tmp_path / "toy"))
    assert len(jobs["train_sae"]) == 2
    assert all(asks_for_gpu(r) for r in jobs["train_sae"])
    assert not any(asks_for_gpu(r) for r in jobs["prepare_dataset"])


def copy_workflow(destination: Path) -> Path:
    """The workflow definition without results/, so runs do not see (or touch) the checkout's."""
    if not (REPO / "Snakefile").exists():
        pytest.skip("the real workflow (Snakefile) is not in this checkout")
    destination.mkdir()
    shutil.copy(REPO / "Snakefile", destination)
    for folder in ("rules", "config", "workflow_scripts", "envs"):
        shutil.copytree(REPO / folder, destination / folder)
    return destination


@pytest.mark.parametrize(
    ("config_args", "absent"),
    [
        ((), {"build_embedded_clip"}),  # the demo loads the shipped CLIP
        (("--configfile", "config/experiments/embedded_clip.yaml"), set()),
        (("--configfile", "config/experiments/seeds.yaml"), {"build_embedded_clip"}),
    ],
    ids=["demo", "demo-building-its-clip", "seeds"],
)
def test_real_workflow_dry_run_gives_gpu_only_to_gpu_rules(
    tmp_path: Path, config_args: tuple[str, ...], absent: set[str]
) -> None:
    require_plugin()
    workdir = copy_workflow(tmp_path / "workflow")
    jobs = job_resources(dry_run(workdir, "results/report.md", *config_args))
    gpu_partition = profile()["set-resources"]["train_sae"]["slurm_partition"]
    assert set(jobs) >= (GPU_RULES | CPU_RULES | LOCAL_RULES) - absent
    assert not absent & set(jobs)
    for rule in GPU_RULES - absent:
        assert all(asks_for_gpu(r) and r["slurm_partition"] == gpu_partition for r in jobs[rule])
    for rule in CPU_RULES | LOCAL_RULES:
        assert not any(asks_for_gpu(r) for r in jobs[rule]), rule
        assert all(r["slurm_partition"] != gpu_partition for r in jobs[rule]), rule


GPU_PAIR_SNAKEFILE = """
rule all:
    input: expand("{name}.span", name=["one", "two"])
rule gpu_job:
    output: "{name}.span"
    resources: gpu=1
    shell: "date +%s.%N > {output}; sleep 1; date +%s.%N >> {output}"
"""


def test_local_profile_never_runs_two_gpu_jobs_at_once(tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(GPU_PAIR_SNAKEFILE)
    result = subprocess.run(
        [SNAKEMAKE, "--workflow-profile", REPO / "profiles" / "local", "--cores", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    spans = sorted(
        tuple(map(float, (tmp_path / f"{name}.span").read_text().split()))
        for name in ("one", "two")
    )
    assert spans[0][1] <= spans[1][0]  # the second started after the first ended


# --- a real cluster -------------------------------------------------------------------------


def cluster_sh(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **NODE_ENV, "SLURM_CI_PARTITIONS": " ".join(partitions())}
    return subprocess.run(
        ["bash", CLUSTER_SCRIPT, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def skip_unless_cluster_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("a SLURM cluster needs root (cluster.sh installs packages, starts daemons)")
    missing = [tool for tool in ("ip", "nsenter", "timeout") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"a SLURM cluster needs {', '.join(missing)}")


@dataclass
class Run:
    """One snakemake invocation inside the cluster's network namespace."""

    workdir: Path
    returncode: int
    output: str

    def sbatch_calls(self) -> dict[str, str]:
        """Snakemake job comment (rule_<rule>_wildcards_<w>) -> its sbatch command line."""
        calls = re.findall(r"sbatch call: (sbatch .*?) --wrap=", self.output)
        return {re.search(r"--comment (\S+)", call).group(1): call for call in calls}

    def slurm_job_ids(self) -> dict[str, str]:
        """'<rule>/<wildcards>' -> SLURM job id, from the plugin's per-job log files."""
        logs = (self.workdir / ".snakemake" / "slurm_logs").glob("rule_*/**/*.log")
        return {self._job_name(log): log.stem for log in logs}

    def _job_name(self, log: Path) -> str:
        """'<rule>/<wildcards>'; the plugin puts the log of a job without wildcards one level up."""
        relative = log.relative_to(self.workdir / ".snakemake" / "slurm_logs").parent.parts
        return f"{relative[0].removeprefix('rule_')}/{'/'.join(relative[1:])}"


def run_snakemake(workdir: Path, *args: str, timeout_s: int = RUN_TIMEOUT_S) -> Run:
    """Run snakemake in the namespace; SIGINT on timeout, because SIGTERM does not stop it."""
    command = ["timeout", "-s", "INT", "-k", "30", str(timeout_s)]
    command += ["bash", str(CLUSTER_SCRIPT), "exec", str(SNAKEMAKE), *args]
    result = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=timeout_s + 60
    )
    assert result.returncode != 124, f"snakemake hung:\n{result.stderr[-3000:]}"
    return Run(workdir, result.returncode, result.stdout + result.stderr)


def run_on_slurm(workdir: Path, *args: str, timeout_s: int = RUN_TIMEOUT_S) -> Run:
    # The first status check after 2 s instead of 40 s; MinJobAge (300 s) stays above 3x this.
    return run_snakemake(
        workdir,
        "--workflow-profile",
        str(SLURM_PROFILE),
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--verbose",
        *args,
        timeout_s=timeout_s,
    )


def copy_toy(destination: Path) -> Path:
    shutil.copytree(TOY, destination)
    return destination


def running_daemon_pids() -> dict[str, int]:
    """The daemons cluster.sh recorded, if their pid still belongs to them."""
    pids = {}
    for name in ("munged", "slurmctld", "slurmd"):
        pidfile = Path("/var/lib/slurm-ci/run") / f"{name}.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text())
            comm = Path(f"/proc/{pid}/comm")
            if comm.exists() and comm.read_text().strip() == name:
                pids[name] = pid
    return pids


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    require_plugin()
    skip_unless_cluster_possible()
    try:
        up = cluster_sh("up")
        if up.returncode == UNSUPPORTED:
            pytest.skip(f"this machine cannot run a SLURM cluster: {up.stderr.strip()}")
        assert up.returncode == 0, up.stderr
        yield
    finally:
        cluster_sh("down")


@pytest.fixture(scope="module")
def toy_on_slurm(cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One run for all toy checks: the whole toy workflow plus a job that fails on purpose
    (--keep-going, so the failure neither stops the rest nor hides the exit status)."""
    workdir = copy_toy(tmp_path_factory.mktemp("slurm") / "toy")
    return run_on_slurm(workdir, "--keep-going", "all", "results/failed.txt")


@pytest.mark.slurm
def test_every_cluster_job_is_a_slurm_job(toy_on_slurm: Run) -> None:
    ids = toy_on_slurm.slurm_job_ids()
    expected = {"prepare_dataset/a", "prepare_dataset/b", "train_sae/a", "train_sae/b"}
    assert set(ids) - {"fail_on_purpose/"} == expected  # results_table is a localrule
    assert len(set(ids.values())) == len(ids)
    for job, job_id in ids.items():
        rule, branch = job.split("/")
        if rule != "fail_on_purpose":
            rule_log = (toy_on_slurm.workdir / "logs" / rule / f"{branch}.log").read_text()
            assert f"job={job_id}" in rule_log  # the rule itself ran inside that SLURM job


@pytest.mark.slurm
def test_gpu_rule_asks_slurm_for_a_gpu(toy_on_slurm: Run) -> None:
    calls = toy_on_slurm.sbatch_calls()
    gpu_partition, cpu_partition = (
        profile()["set-resources"]["train_sae"]["slurm_partition"],
        profile()["default-resources"]["slurm_partition"],
    )
    for branch in "ab":
        assert "--gpus=1" in calls[f"rule_train_sae_wildcards_{branch}"]
        assert f"-p {gpu_partition}" in calls[f"rule_train_sae_wildcards_{branch}"]
        assert "--gpus" not in calls[f"rule_prepare_dataset_wildcards_{branch}"]
        assert f"-p {cpu_partition}" in calls[f"rule_prepare_dataset_wildcards_{branch}"]
        # slurmd handed the job one of the fake GPUs.
        train_log = toy_on_slurm.workdir / "logs" / "train_sae" / f"{branch}.log"
        assert re.search(r"gpus=\d+$", train_log.read_text().strip())


@pytest.mark.slurm
def test_slurm_outputs_equal_a_local_run(toy_on_slurm: Run, tmp_path: Path) -> None:
    local = run_snakemake(copy_toy(tmp_path / "toy"), "--cores", "2", "all")
    assert local.returncode == 0, local.output[-3000:]
    slurm_results, local_results = toy_on_slurm.workdir / "results", local.workdir / "results"
    files = sorted(p.relative_to(slurm_results) for p in slurm_results.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(local_results) for p in local_results.rglob("*") if p.is_file()
    )
    assert len(files) == 5
    _, mismatch, errors = filecmp.cmpfiles(slurm_results, local_results, files, shallow=False)
    assert (mismatch, errors) == ([], [])


@pytest.mark.slurm
def test_failing_slurm_job_fails_the_run(toy_on_slurm: Run) -> None:
    assert toy_on_slurm.returncode != 0
    errors = re.findall(
        r"Error in rule (\w+):\n\s+message: SLURM-job '(\d+)' failed, SLURM status is: '(\w+)'",
        toy_on_slurm.output,
    )
    assert [(rule, status) for rule, _, status in errors] == [("fail_on_purpose", "FAILED")]
    assert not (toy_on_slurm.workdir / "results" / "failed.txt").exists()


@pytest.mark.slurm
def test_real_workflow_runs_on_slurm(cluster: None, tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "workflow")
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(REAL_CI_CONFIG))
    # Every rule of the DAG, to the report, so that no rule breaks only on a cluster.
    planned = set(job_resources(dry_run(workdir, "results/report.md"))) - LOCAL_RULES
    run = run_on_slurm(workdir, "results/report.md", timeout_s=3 * RUN_TIMEOUT_S)
    assert run.returncode == 0, run.output[-5000:]
    assert pl.read_parquet(workdir / "results" / "tables" / "results.parquet").height > 0
    assert "## Results" in (workdir / "results" / "report.md").read_text()
    rules_run = {job.split("/")[0] for job in run.slurm_job_ids()}
    assert rules_run == planned and {"steering", "clean_interpretations"} <= rules_run
    for comment, call in run.sbatch_calls().items():
        rule = re.match(r"rule_(\w+?)_wildcards_", comment).group(1)
        assert ("--gpus=1" in call) == (rule in GPU_RULES), call


@pytest.mark.slurm
def test_cluster_down_stops_everything(cluster: None) -> None:
    """Runs last in this module: afterwards no daemon, namespace or config link is left."""
    started = running_daemon_pids()
    assert {"slurmctld", "slurmd"} <= set(started)
    down = cluster_sh("down")
    assert down.returncode == 0, down.stderr
    assert not any(Path(f"/proc/{pid}").exists() for pid in started.values())
    assert not Path("/run/netns/slurmci").exists()
    assert not Path("/etc/slurm/slurm.conf").is_symlink()
    assert cluster_sh("status").returncode != 0
