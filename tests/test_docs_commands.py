"""Every command in the README and the docs runs as written.

The commands are read from the ```bash / ```sh / ```console code blocks of README.md and docs/*.md.
The cheap ones (help, config prints, refused configs: a few seconds each) run here, exactly as written,
from the repository root, and must exit as stated in RUN. Every other command must be in NOT_RUN with
the reason it is not run here, so a new command in the docs has to be classified before the suite passes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
TRAILING_COMMENT = re.compile(r"\s+#\s.*$")

#: Commands run as written, with the exit status each must give.
RUN: dict[str, int] = {
    "python -m vaezoo --help": 0,
    "python -m vaezoo --cfg job model=beta_vae": 0,
    "python -m vaezoo --cfg job hardware=ddp hardware.num_threads=4": 0,
    "python -m vaezoo --cfg job dataset=digits trainer.max_epochs=5": 0,
    "python -m vaezoo trainer.max_epoch=5": 2,
    "python -m vaezoo.evaluate --help": 0,
    "python -m vaezoo.report --help": 0,
    "python -m benchmarks --help": 0,
    (
        "python -m vaezoo hydra/launcher=slurm hydra.launcher.partition=gpu hardware=multinode "
        "hardware.num_nodes=1 hardware.devices=4 --cfg all --resolve -p hydra.launcher"
    ): 0,
}

TRAINS = "trains for minutes (the quick start and the suite run in CI through .ci/run)"
NEEDS_JOB = "needs a finished job or sweep folder (a placeholder such as <job> in the command)"
INSTALLS = "creates a virtual environment and installs into it"
NEEDS_MNIST = "needs MNIST or another downloaded dataset and trains for minutes to hours"
CONTAINER = (
    "tests/test_docker.py runs it as written (minutes; VAEZOO_CONTAINER_TESTS=1 and a container engine)"
)
STAND_IN = (
    "builds the stand-in base and the image (minutes, root, podman); done by hand for docs/scaling-out.md"
)
TWO_NODES = "tests/test_multinode.py runs the three lines together (30-50 s; VAEZOO_SLOW_TESTS=1)"

NODE = (
    "torchrun --nnodes=2 --nproc-per-node=1 --node-rank={} --master-addr=127.0.0.1 --master-port=29500 "
    "-m vaezoo hardware=multinode hardware.accelerator=cpu hardware.devices=1 "
    "hardware.process_group_backend=gloo "
    "hardware.precision=32-true dataset=digits trainer.max_epochs=2 eval.iw_k=8 pictures.enabled=false "
    "logger=csv hydra.run.dir=runs/two-nodes"
)

#: Commands not run here, each with the reason.
NOT_RUN: dict[str, str] = {
    "python -m vaezoo.sampler run=<job folder> sampler=gmm": "placeholder; tests/test_samplers.py runs it",
    # the measured sampler table (docs/samples.md)
    "python -m vaezoo -m experiment=zoo_mnist model=vanilla,beta_vae,hvae eval.iw_k=10 hydra/launcher=local "
    "hydra.launcher.n_jobs=2 hardware.num_threads=1": "three 40-epoch MNIST jobs: 25 minutes on 2 cores",
    "python -m vaezoo.evaluate run=<job folder> eval.sampler=[gmm,maf,two_stage] "
    "eval.metrics=[fid]": NEEDS_JOB,
    "python -m vaezoo.table <the sweep folder>": NEEDS_JOB,
    "python -m vaezoo.evaluate run=<job folder> eval.sampler=gmm eval.metrics=[fid,conditional_accuracy]": (
        "placeholder path; tests/test_samplers.py runs it"
    ),
    "python -m vaezoo -m model=vanilla model.prior=standard_normal,vamp dataset=mnist trainer.max_epochs=3 "
    "eval.iw_k=200 eval.max_examples=2000 pictures.enabled=false logger=csv": NEEDS_MNIST,
    "python -m vaezoo -m model=vqvae model.quantizer=vq,fsq,rvq dataset=digits trainer.max_epochs=20 "
    "pictures.enabled=false logger=csv": TRAINS,
    "python -m vaezoo model=vqvae model.quantizer=fsq 'model.fsq_levels=[5,5,5]' dataset=digits "
    "trainer.max_epochs=20 logger=csv pictures.enabled=false hydra.run.dir=runs/fsq555": TRAINS,
    "python -m vaezoo.prior run=runs/fsq555": "needs the job the line above trains",
    # set-up and CI
    "python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e . && "
    ".venv/bin/python -m vaezoo -m experiment=quickstart": "the quick start: CI runs it (.ci/run)",
    'python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e ".[dev]" && '
    ".venv/bin/python -m pytest": "the test suite: CI runs it (.ci/run)",
    "python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e .": INSTALLS,
    'python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e ".[dev]"': INSTALLS,
    "source .venv/bin/activate": "changes the calling shell only",
    "python -m vaezoo -m experiment=quickstart": TRAINS,
    ".venv/bin/python -m pytest": "the whole suite (this test is part of it)",
    ".venv/bin/python -m pytest tests/test_architecture.py tests/test_docs_commands.py": "runs this test",
    ".venv/bin/ruff check . && .venv/bin/ruff format --check .": "lint: CI runs it (.ci/run)",
    "NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir site": "the docs build: in .ci/run",
    "export VAEZOO_DATA=/path/with/MNIST": "sets a placeholder path for the commands after it",
    # training
    "python -m vaezoo model=beta_vae beta=4 -m": NEEDS_MNIST,
    "python -m vaezoo -m model=vanilla,beta_vae,cvae,vqvae,hvae dataset=digits": TRAINS,
    "python -m vaezoo model=vqvae dataset=mnist": NEEDS_MNIST,
    "python -m vaezoo dataset=image_folder dataset.path=~/pets model=cvae": (
        "needs your own image folder (~/pets)"
    ),
    "python -m vaezoo dataset=arrays dataset.path=~/pets.npz likelihood=discretized_logistic model=cvae": (
        "needs your own array file (~/pets.npz)"
    ),
    "python -m vaezoo.classifier dataset=mnist": NEEDS_MNIST,
    "python -m vaezoo hardware=ddp_cpu dataset=digits trainer.max_epochs=5": TRAINS,
    "torchrun --nproc-per-node 2 -m vaezoo hardware=ddp_cpu dataset=digits trainer.max_epochs=5 "
    "hydra.run.dir=runs/torchrun-digits": TRAINS,
    "python -m vaezoo hardware=ddp dataset=cifar10 model/net=conv": ("needs GPUs and CIFAR-10"),
    "srun python -m vaezoo hardware=multinode hardware.num_nodes=2 hardware.devices=8 "
    "hydra.run.dir=runs/slurm-$SLURM_JOB_ID": "needs a SLURM allocation with GPUs",
    "python -m vaezoo -m hydra/launcher=local dataset=digits trainer.max_epochs=5 beta=1,2,4,8": TRAINS,
    "python -m vaezoo -m hydra/launcher=slurm hydra.launcher.partition=gpu hydra.launcher.timeout_min=720 "
    "hardware=multinode hardware.num_nodes=1 hardware.devices=4 model=beta_vae beta=1,4": "needs SLURM",
    "python -m vaezoo -m dataset=digits trainer.max_epochs=1 logger=csv optimizer.lr=1e-3,1e6": (
        "trains a two-job sweep (tests/test_sweeps.py runs the same failing-job case)"
    ),
    "python -m vaezoo -m experiment=optuna_digits hydra.sweeper.n_trials=10 trainer.max_epochs=5": TRAINS,
    "python -m vaezoo resume=runs/2026-11-21_17-18-51 trainer.max_epochs=7": NEEDS_JOB,
    "python -m vaezoo resume=runs/multirun/2026-11-21_17-20-06/"
    "1_beta=2,dataset=digits,trainer.max_epochs=5": (NEEDS_JOB),
    # the papers' protocols and the measurements of the results page
    "python -m vaezoo -m experiment=zoo_mnist model=vanilla,cvae,hvae,vqvae trainer.max_epochs=2 "
    "eval.max_examples=1000": NEEDS_MNIST,
    "python -m vaezoo -m experiment=zoo_mnist model=vanilla objective.k=50 trainer.max_epochs=2 "
    "eval.max_examples=1000": NEEDS_MNIST,
    "python -m vaezoo -m experiment=zoo_mnist model=hvae kl=free_bits kl.per=group kl.lambda_=4 "
    "trainer.max_epochs=2 eval.max_examples=1000": NEEDS_MNIST,
    "python -m vaezoo.prior run=<the vqvae job folder> prior.channels=32 prior.layers=4 "
    "trainer.max_epochs=3": (NEEDS_JOB),
    "python -m vaezoo.prior run=runs/<date_time>": NEEDS_JOB,
    "python -m vaezoo.table runs/multirun": NEEDS_JOB,
    "python -m vaezoo -m model=beta_vae beta=1,4,16 model/net=conv dataset=dsprites hardware=cpu "
    "hardware.num_threads=1 hydra/launcher=local hydra.launcher.n_jobs=3 +trainer.max_steps=400 "
    "trainer.max_epochs=1 +trainer.limit_val_batches=4 eval.iw_k=10 eval.max_examples=1000 logger=csv "
    "+eval.settings.mig.num_train=5000 +eval.settings.dci.num_train=5000 +eval.settings.dci.num_test=2000 "
    "+eval.settings.sap.num_train=5000 +eval.settings.sap.num_test=2000 "
    "+eval.settings.beta_vae_score.num_train=300 +eval.settings.beta_vae_score.num_eval=150 "
    "+eval.settings.factor_vae_score.num_train=300 +eval.settings.factor_vae_score.num_eval=150 "
    "+eval.settings.factor_vae_score.num_variance_estimate=5000": "trains three dSprites jobs for 13 minutes",
    # docs/models.md: the disentanglement methods' short runs (minutes each; their numbers are in the page)
    "python -m vaezoo -m model=beta_tcvae model.tc_beta=1,10 model.tc_estimator=mss dataset=digits "
    "trainer.max_epochs=14 hardware=cpu eval.iw_k=4 pictures.enabled=false logger=csv": "trains two jobs",
    "python -m vaezoo -m model=dip_vae_ii model.lambda_od=1,50 'model.lambda_d=${model.lambda_od}' "
    "dataset=digits trainer.max_epochs=14 hardware=cpu eval.iw_k=4 pictures.enabled=false logger=csv": (
        "trains two jobs"
    ),
    "python -m vaezoo model=dip_vae_i model.lambda_od=50 model.lambda_d=500 dataset=digits "
    "trainer.max_epochs=45 hardware=cpu eval.iw_k=4 pictures.enabled=false logger=csv": "trains for a minute",
    "python -m vaezoo -m model=factor_vae model.gamma=10,100 dataset=digits trainer.max_epochs=14 "
    "hardware=cpu eval.iw_k=4 pictures.enabled=false logger=csv": "trains two jobs for minutes",
    # evaluation and reports of finished jobs
    "python -m vaezoo.evaluate run=runs/multirun/<time>": NEEDS_JOB,
    "python -m vaezoo.evaluate run=<job> eval.metrics=[mig,dci] +eval.settings.mig.num_train=2000": NEEDS_JOB,
    "python -m vaezoo.report runs/multirun/<time>-<suffix>": NEEDS_JOB,
    "python -m benchmarks.report_size runs/multirun/<time>-<suffix> --jobs 10": NEEDS_JOB,
    # the disentanglement study (docs/study.md)
    "python -m vaezoo -m experiment=disentanglement_study hydra/launcher=slurm hardware=gpu "
    "hydra.launcher.partition=<partition> hydra.launcher.timeout_min=240": "1,800 GPU jobs on SLURM",
    "python -m vaezoo -m experiment=disentanglement_study method=beta_vae,factor_vae study.index=0,5 "
    "seed=0,1,2": "24 jobs of 300,000 steps",
    "python -m vaezoo -m experiment=disentanglement_study_small hydra/launcher=local "
    "hydra.launcher.n_jobs=2": "24 dSprites jobs of 3,000 steps: hours on a CPU",
    # the measured small study, in three parts (docs/study.md)
    "python -m vaezoo -m experiment=disentanglement_study_small hydra/launcher=local hydra.launcher.n_jobs=2 "
    "hardware=cpu hardware.num_threads=1 trainer.max_steps=2500 study.anneal_steps=833 "
    "method=beta_vae": ("4 dSprites jobs: 20 minutes on 2 cores"),
    "python -m vaezoo -m experiment=disentanglement_study_small hydra/launcher=local hydra.launcher.n_jobs=2 "
    "hardware=cpu hardware.num_threads=1 trainer.max_steps=2500 study.anneal_steps=833 "
    "method=annealed_vae,factor_vae,beta_tcvae,dip_vae_i,dip_vae_ii seed=0 "
    "hydra.sweep.dir=<the first sweep's folder>": (NEEDS_JOB),
    "python -m vaezoo -m experiment=disentanglement_study_small hydra/launcher=local hydra.launcher.n_jobs=2 "
    "hardware=cpu hardware.num_threads=1 trainer.max_steps=2500 study.anneal_steps=833 "
    "method=factor_vae,beta_tcvae,dip_vae_ii,dip_vae_i,annealed_vae seed=1 "
    "hydra.sweep.dir=<the first sweep's folder>": (NEEDS_JOB),
    # the benchmark
    "python -m benchmarks --data-root data": "needs MNIST; about 4 minutes",
    "python -m benchmarks --data-root data --families vanilla --inputs mnist --repeats 5": NEEDS_MNIST,
    "python -m benchmarks --data-root data --full": "hours on a CPU; meant for GPUs",
    "python -m benchmarks.conv_step": "timings, not a check; about 3 minutes on 2 cores",
    "python -m benchmarks.conv_step --glibc-default": "timings, not a check (the allocator's before)",
    # Docker (README) and the stand-in base (docs/scaling-out.md)
    "docker build --target cpu -t vaezoo:cpu .": CONTAINER,
    'mkdir -p runs data && docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/runs:/runs" '
    '-v "$PWD/data:/data" vaezoo:cpu -m experiment=quickstart': CONTAINER,
    'docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/runs:/runs" -v "$PWD/data:/data" vaezoo:cpu '
    "reproduce=/runs/<job folder>": CONTAINER,
    'docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/runs:/runs" -e WANDB_API_KEY --entrypoint wandb '
    "vaezoo:cpu sync /runs/<job folder>/wandb/<offline run>": CONTAINER,
    'docker build --target cuda -t vaezoo:cuda . && docker run --rm --gpus all --user "$(id -u):$(id -g)" '
    '-v "$PWD/runs:/runs" -v "$PWD/data:/data" vaezoo:cuda -m experiment=quickstart hardware=gpu': (
        "needs Docker, an NVIDIA GPU and its container toolkit"
    ),
    "sudo debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm rootfs "
    "http://deb.debian.org/debian": STAND_IN,
    "sudo tar -C rootfs -c . | podman import - localhost/vaezoo-base:bookworm-python3.11": STAND_IN,
    "printf '[global]\\ncert = /run/secrets/pip_ca\\n' > pip.conf": STAND_IN,
    "podman build --target cpu -t vaezoo:cpu --build-arg BASE=localhost/vaezoo-base:bookworm-python3.11 "
    "--build-arg TORCH_INDEX_URL=https://pypi.org/simple --secret id=pip_conf,src=pip.conf "
    "--secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt .": STAND_IN,
    # two nodes on one machine (docs/scaling-out.md)
    NODE.format(0): TWO_NODES,
    NODE.format(1): TWO_NODES,
    "python -m vaezoo hardware=cpu dataset=digits dataset.batch_size=128 trainer.max_epochs=2 eval.iw_k=8 "
    "pictures.enabled=false logger=csv hydra.run.dir=runs/one-process": TWO_NODES,
}


def commands_in(text: str) -> list[str]:
    """The commands of a Markdown text's shell code blocks: continuation lines joined, comments and
    ``$`` prompts dropped, one command per line."""
    commands = []
    for block in SHELL_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = TRAILING_COMMENT.sub("", line.strip().removeprefix("$ ")).strip()
            line = re.sub(r"\s{2,}", " ", line)
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def documented_commands() -> dict[str, list[str]]:
    """Each command, with the files that show it."""
    found: dict[str, list[str]] = {}
    for path in DOC_FILES:
        for command in commands_in(path.read_text()):
            found.setdefault(command, []).append(path.relative_to(REPO).as_posix())
    return found


def test_extraction_joins_continuations_and_drops_comments():
    text = "```bash\n# a comment\npython -m a \\\n  b=1   # why\n$ python -m c\n```\n```text\nnot me\n```\n"
    assert commands_in(text) == ["python -m a b=1", "python -m c"]


def test_every_documented_command_is_run_or_classified():
    found = documented_commands()
    assert len(found) > 20, "no commands found: is the code-block pattern right?"
    unclassified = {c: files for c, files in found.items() if c not in RUN and c not in NOT_RUN}
    assert not unclassified, (
        "commands in the docs that tests/test_docs_commands.py neither runs (RUN) nor lists with a reason "
        f"(NOT_RUN): {unclassified}"
    )


def test_every_classified_command_is_still_documented():
    found = documented_commands()
    stale = sorted((set(RUN) | set(NOT_RUN)) - set(found))
    assert not stale, f"classified in tests/test_docs_commands.py but no longer in the docs: {stale}"
    assert not set(RUN) & set(NOT_RUN)


@pytest.mark.parametrize("command", sorted(RUN))
def test_documented_command_runs_as_written(command, tmp_path):
    """Run from the repository root with this interpreter first on PATH (``python`` is the venv's);
    runs, if any, go to a temporary folder."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "VAEZOO_RUNS": str(tmp_path / "runs"),
        "HYDRA_FULL_ERROR": "0",
    }
    proc = subprocess.run(
        ["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == RUN[command], f"{command}\nexit {proc.returncode}\n{output[-2000:]}"
    assert "Traceback" not in output, output[-2000:]
    if RUN[command] != 0:
        assert output.strip().splitlines()[-1].startswith("vaezoo: error:"), output[-2000:]


def test_readme_is_a_short_front_page_whose_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 300, "README.md is over 300 lines: move the detail into docs/"
    visible = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", visible)
    missing = [t for t in targets if "://" not in t and not (REPO / t).exists()]
    assert targets and not missing, f"README links to files that do not exist: {missing}"
