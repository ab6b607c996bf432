"""The DVC pipeline itself: deps match imports, and `dvc repro` end to end in a temp git repo."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from helpers import PARAMS, REPO, TINY, make_idx_dir, make_image_folder, write_params

DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())


def _module_file(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "dcgan":
        return None
    base = REPO / "src" / Path(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(REPO).as_posix()
    return None


def _dcgan_imports(path: Path, seen: set[str]) -> set[str]:
    """The src/dcgan modules ``path`` imports, transitively (package __init__ files left out)."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            rel = _module_file(name)
            if rel and rel not in seen:
                seen.add(rel)
                _dcgan_imports(REPO / rel, seen)
    return {s for s in seen if not s.endswith("__init__.py")}


@pytest.mark.parametrize("stage", sorted(DVC_YAML["stages"]))
def test_stage_deps_list_the_modules_it_imports(stage):
    spec = DVC_YAML["stages"][stage]
    script = f"stages/{stage}.py"
    assert script in spec["cmd"] and script in spec["deps"]
    imported = _dcgan_imports(REPO / script, set())
    listed = {d for d in spec["deps"] if d.startswith("src/") and d.endswith(".py")}
    assert imported == listed, f"{stage}: deps should list exactly {sorted(imported)}"


def test_the_download_stage_depends_on_the_built_in_samples():
    """It copies them: a changed sample file must rerun it (and only it reads them)."""
    users = [name for name, spec in DVC_YAML["stages"].items()
             if "src/dcgan/data/samples" in spec["deps"]]
    assert users == ["download"]


def _run(cmd: list[str], cwd: Path) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def copy_repo(dest: Path) -> Path:
    """Copy the repo's tracked and untracked-but-not-ignored files into a fresh git repo."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    shutil.copy2(PARAMS, dest / "params.yaml")  # the defaults, not an experiment's leftovers
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "test@example.com"],
                ["git", "config", "user.name", "test"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "init"]):
        _run(cmd, dest)
    return dest


def set_params(repo: Path, **values) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def dvc(repo: Path, *args: str) -> str:
    return _run([sys.executable, "-m", "dvc", *args], repo)


@pytest.mark.slow
def test_data_stages_repro_cache_and_run_cache(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    idx_dir = make_idx_dir(tmp_path / "idx", n=40, test=8)
    folder = make_image_folder(tmp_path / "imgs", per_class=2)
    set_params(repo, dataset=f"idx:{idx_dir}")
    out = dvc(repo, "repro", "preprocess")
    assert "Running stage 'download'" in out and "Running stage 'preprocess'" in out
    meta = yaml.safe_load((repo / "data/prepared/meta.json").read_text())
    assert meta["splits"]["train"]["shape"] == [40, 1, 28, 28]

    out = dvc(repo, "repro", "preprocess")
    assert "Running stage" not in out  # nothing changed: nothing runs

    set_params(repo, dataset=f"folder:{folder}")
    dvc(repo, "repro", "preprocess")
    assert yaml.safe_load((repo / "data/prepared/meta.json").read_text())["image_shape"] == [3, 64, 64]

    set_params(repo, dataset=f"idx:{idx_dir}")
    out = dvc(repo, "repro", "preprocess")
    # DVC's run cache restores the stages instead of recomputing them (validate's too)
    assert out.count("is cached - skipping run") == 3 and "Running stage" not in out
    assert yaml.safe_load((repo / "data/prepared/meta.json").read_text()) == meta


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> tuple[Path, Path, str]:
    """A temp git repo after one tiny `dvc repro` (7 stages, ~40 s): (repo, its IDX source,
    dvc's output). Tests work on copies of it (:func:`_copy_of`)."""
    tmp = tmp_path_factory.mktemp("reproduced")
    repo = copy_repo(tmp / "repo")
    idx_dir = make_idx_dir(tmp / "idx", n=48, test=32)
    write_params(repo, {**TINY, "train.epochs": 1, "train.eval_every": 1,
                        "train.eval_samples": 1000, "dataset": f"idx:{idx_dir}"})
    _run(["git", "commit", "-qam", "tiny params"], repo)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)  # the default: mlflow.db in the repo
        return repo, idx_dir, dvc(repo, "repro")


def _copy_of(reproduced: tuple[Path, Path, str], dest: Path) -> Path:
    shutil.copytree(reproduced[0], dest, symlinks=True)
    return dest


@pytest.mark.slow
def test_full_pipeline_then_exp_run_with_other_loss(tmp_path, monkeypatch, reproduced):
    """`dvc repro` runs every stage; `dvc exp run -S loss=mse` reruns only train and evaluate."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the default store: mlflow.db at the repo root
    repo, idx_dir, out = _copy_of(reproduced, tmp_path / "repo"), reproduced[1], reproduced[2]
    for stage in ("validate", "download", "preprocess", "classifier", "train", "evaluate", "report"):
        assert f"Running stage '{stage}'" in out
    with Image.open(repo / "data/report/progress.gif") as gif:
        assert gif.n_frames == 1  # one frame per epoch
    scores = yaml.safe_load((repo / "data/eval/details.json").read_text())
    assert scores["samples"] == 32 and scores["reference"].startswith("held-out")
    assert {"generator", "floor", "best"} <= set(scores) and scores["best"]["epoch"] == 1
    best = yaml.safe_load((repo / "metrics/eval/best.json").read_text())
    assert set(best) == {"IS", "FD", "precision", "recall", "copies", "epoch", "exp"}
    assert best["exp"] == "workspace"  # `dvc repro` made it, no experiment
    assert "Best checkpoint: epoch 1, the lowest classifier-space Fréchet distance on 48 samples" \
        in (repo / "data/report/summary.md").read_text()  # train.eval_samples capped at 48 images
    assert (repo / "data/train/generator_best.pt").is_file()
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("dcgan").experiment_id])
    assert run.data.tags["dvc.stage"] == "train"
    # a few headline scores charted; every row's every score in one table artifact
    assert {m for m in run.data.metrics if m.startswith("scores/")} <= {"scores/IS", "scores/FD"}
    assert run.data.metrics["scores/FD"] == pytest.approx(
        scores["generator"]["classifier"]["frechet_distance"])
    from dcgan.tracking.attach import read_scores

    table = read_scores(client, run, tmp_path / "table")  # 4 significant digits
    assert table["floor"]["FD"] == pytest.approx(
        scores["floor"]["classifier"]["frechet_distance"], rel=1e-3)
    assert table["generator"]["copies"] == pytest.approx(
        scores["generator"]["copies"]["pixels"]["share"], rel=1e-3, abs=1e-9)
    assert not [m for m in run.data.metrics if "histogram" in m]  # per-class counts: an artifact
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "eval")}
    assert artifacts == {"eval/details.json", "eval/nearest.png", "eval/scores.json"}
    assert run.data.tags["eval.reference"].startswith("held-out")
    assert run.data.tags["mlflow.note.content"].startswith(f"bce on idx:{idx_dir}: 1 epochs = ")
    _run(["git", "add", "dvc.lock", "metrics"], repo)  # the README's baseline commit
    _run(["git", "commit", "-qm", "baseline"], repo)

    out = dvc(repo, "exp", "run", "-S", "loss=mse")
    assert all(f"Running stage '{s}'" in out for s in ("train", "evaluate", "report"))
    for stage in ("download", "preprocess", "classifier"):
        assert f"Running stage '{stage}'" not in out
    # --all: this tiny classifier scores both generators alike to the headline's 4 digits
    diff = dvc(repo, "metrics", "diff", "--all", "--md")
    assert "| metrics/eval/generator.json | FD " in diff and "| metrics/train.json " in diff
    # every metrics file names the experiment that made it; docs/tracking.md's columns show it
    made_by = {json.loads(f.read_text())["exp"] for f in (repo / "metrics").rglob("*.json")}
    assert len(made_by) == 1 and made_by != {"workspace"}, made_by
    shown = dvc(repo, "exp", "show", "--drop", ".*", "--keep",
                r"Experiment|^loss$|metrics/(train|eval/generator)\.json:(exp|IS|FD|copies)$", "--csv")
    header = shown.splitlines()[0].split(",")
    assert {"metrics/train.json:exp", "metrics/eval/generator.json:exp",
            "metrics/eval/generator.json:FD"} <= set(header), shown
    assert made_by.pop() in shown
    # the exp-show lines of the README and tracking.md, verbatim, in a 120-column terminal:
    # the score columns show (DVC folds what does not fit to "…")
    monkeypatch.setenv("COLUMNS", "120")
    for page in ("README.md", "docs/tracking.md"):
        line = re.search(r"^dvc exp show .*$", (REPO / page).read_text(), re.M).group(0)
        header = next(row for row in dvc(repo, *shlex.split(line)[1:], "--no-pager").splitlines()
                      if "Experiment" in row)
        assert "generator.json:IS" in header and "generator.json:FD" in header, (page, header)


def _outputs(repo: Path) -> dict[str, bytes]:
    """Every file of the train stage's outputs and of metrics/, by path."""
    files = [*(repo / "data/train").rglob("*"), *(repo / "metrics").rglob("*")]
    return {str(f.relative_to(repo)): f.read_bytes() for f in files if f.is_file()}


@pytest.mark.slow
def test_a_rejected_param_leaves_every_earlier_output_as_it_was(tmp_path, reproduced):
    """DVC clears a stage's outputs right before running it: validation inside the train
    stage came too late. The validate stage runs first, so nothing is cleared."""
    repo = _copy_of(reproduced, tmp_path / "repo")
    before = _outputs(repo)
    assert "data/train/generator.pt" in before and "metrics/train.json" in before
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    good = (repo / "params.yaml").read_text()
    for edit, command, message in (
            (("loss: bce", "loss: BCE"), ["repro"], "loss: unknown value 'BCE'"),
            (("  ema: 0.995", "  ema: 1.5"), ["repro"], "train.ema: must be between 0 and 1"),
            (("  batch_size: 16", "  batch_size: 0"), ["repro"], "train.batch_size: must be >= 1"),
            # accepted by the params' types, refused by a later stage after DVC cleared outputs:
            (("  batch_size: 16", "  batch_size: 1"), ["repro"], "batch norm needs a batch of at least 2"),
            (("  max_images: all", "  max_images: 1"), ["repro"], "preprocess.max_images 1 leaves 1"),
            (None, ["exp", "run", "-S", f"dataset=idx:{reproduced[1]}k"], "not found; fix the path"),
            (None, ["exp", "run", "-S", "loss=BCE"], "loss: unknown value 'BCE'"),
            (None, ["exp", "run", "-S", "+train.epoch=3"], "train.epoch: unknown key")):
        if edit:
            assert edit[0] in good
            (repo / "params.yaml").write_text(good.replace(*edit))
        proc = subprocess.run([sys.executable, "-m", "dvc", *command], cwd=repo, env=env,
                              capture_output=True, text=True)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, proc.stderr
        if command[0] == "exp":  # -S left the value in params.yaml: the line says how to restore it
            assert "restore the committed file with `git checkout params.yaml`" in proc.stderr
            assert (repo / "params.yaml").read_text() != good  # what DVC does: the value stays
        assert "Running stage 'train'" not in proc.stdout
        assert _outputs(repo) == before, f"{command} {edit}: outputs changed"
        (repo / "params.yaml").write_text(good)


@pytest.mark.slow
def test_a_fixed_local_source_is_read_again_by_the_next_repro(tmp_path):
    """The error names the user's own file, and fixing it needs no `dvc repro -f`."""
    repo = copy_repo(tmp_path / "repo")
    folder = make_image_folder(tmp_path / "imgs", per_class=2)
    broken = folder / "train" / "cat" / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    set_params(repo, dataset=f"folder:{folder}")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    failed = subprocess.run([sys.executable, "-m", "dvc", "repro", "preprocess"], cwd=repo, env=env,
                            capture_output=True, text=True)
    assert failed.returncode != 0
    assert f"error: {broken}: unreadable image" in failed.stdout + failed.stderr
    assert not (repo / "data/raw").exists()
    broken.unlink()  # the user fixes the source
    out = dvc(repo, "repro", "preprocess")
    assert "Running stage 'download'" in out and "Running stage 'preprocess'" in out
    meta = yaml.safe_load((repo / "data/prepared/meta.json").read_text())
    assert meta["splits"]["train"]["count"] == 4
