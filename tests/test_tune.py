"""`dcgan tune`: the search-space file, a tiny study end to end (deterministic for a seed),
its tuned file, figures and nested MLflow runs. Workers, kills and PostgreSQL:
tests/test_tune_workers.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from helpers import PARAMS, TINY, make_idx_dir, write_params

optuna = pytest.importorskip("optuna")

SPACE = {"train.lr_g": {"low": 1.0e-4, "high": 2.0e-3, "log": True},
         "train.lr_d": {"low": 1.0e-4, "high": 2.0e-3, "log": True},
         "train.beta1": {"choices": [0.0, 0.5]}, "train.ema": {"choices": ["none", 0.99]}}


def tune_args(tmp_path: Path, *extra: str, storage: str | None = None,
              space: dict | None = None) -> list[str]:
    """`dcgan tune` arguments for a tiny study in ``tmp_path`` (two losses, three trials)."""
    params = write_params(tmp_path / "cfg", TINY)
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space or SPACE))
    data = tmp_path / "idx"
    if not data.is_dir():
        make_idx_dir(data, n=64)
    return ["tune", "--params", str(params), "--dataset", f"idx:{data}", "--losses", "bce,hinge",
            "--trials", "3", "--steps", "4", "--batch", "16", "--device", "cpu",
            "--space", str(tmp_path / "space.yaml"), "--heartbeat", "1",
            "--storage", storage or f"sqlite:///{tmp_path / 'tune.db'}",
            "--tuned", str(tmp_path / "tuned.yaml"), "--out", str(tmp_path / "out"), *extra]


def trials_of(storage: str) -> dict[str, list]:
    """Each study's trials: (number, state, params, value, user attrs without timings)."""
    out = {}
    for summary in optuna.study.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        out[summary.study_name] = [
            (t.number, t.state.name, t.params, t.value,
             {k: v for k, v in t.user_attrs.items() if k not in ("wall_s", "worker")})
            for t in study.get_trials()]
    return out


# --- the search-space file ---------------------------------------------------------------

@pytest.mark.parametrize("space, words", [
    ({"train.lr_gg": {"low": 1e-4, "high": 1e-3}}, "train.lr_gg: unknown key"),
    ({"train.lr_g": {"low": 1e-3, "high": 1e-4}}, "train.lr_g: empty range"),
    ({"train.lr_g": {"low": 1e-3, "high": 1e-3}}, "train.lr_g: empty range"),
    ({"model.ndf": {"choices": []}}, "model.ndf: choices is empty"),
    ({"train.lr_g": {"low": 0, "high": 1e-3, "log": True}}, "a log range needs low > 0"),
    ({"train.lr_g": {"low": 1e-4, "hi": 1e-3}}, "unknown field 'hi'"),
    ({"loss": {"choices": ["bce", "mse"]}}, "loss: fixed by the study"),
    ({"train.ema": {"choices": [0.99, 1.5]}}, "train.ema: value 1.5 is refused"),
    ({"model.g_upsample": {"choices": ["resize", "bilinear"]}}, "unknown value 'bilinear'"),
])
def test_a_bad_search_space_fails_in_one_line_before_any_training(tmp_path, capsys, space, words):
    from dcgan.cli import main

    args = tune_args(tmp_path, space=space)
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and words in err and err.count("\n") == 1, err
    assert not (tmp_path / "tune.db").exists() and not (tmp_path / "tuned.yaml").exists()


def test_the_shipped_search_space_validates():
    from dcgan.tuning.space import load_space

    dims = load_space(Path(__file__).parents[1] / "configs/search_space.yaml", PARAMS,
                      {"loss": "wgan-gp"})
    assert {"train.lr_g", "train.d_steps", "train.r1", "train.ema", "model.ndf",
            "model.extra_layers"} <= {d.key for d in dims}


def test_losses_and_storage_are_checked_before_any_work(tmp_path, capsys):
    from dcgan.cli import main

    for args, words in ((tune_args(tmp_path, "--losses", "bce,ls"), "unknown loss 'ls'"),
                        (tune_args(tmp_path, storage="nosuch://x"), "study storage nosuch://x")):
        with pytest.raises(SystemExit):
            main(args)
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err


def test_storage_passwords_are_masked():
    from dcgan.tuning.study import mask

    assert mask("postgresql+psycopg2://ann:secret@db:5432/optuna") == (
        "postgresql+psycopg2://ann:***@db:5432/optuna")
    assert mask("sqlite:////tmp/a@b/tune.db") == "sqlite:////tmp/a@b/tune.db"


# --- a tiny study end to end --------------------------------------------------------------

@pytest.mark.slow
def test_a_tiny_study_is_deterministic_and_leaves_its_outputs(tmp_path, capsys):
    from dcgan.cli import main

    main(tune_args(tmp_path / "a"))
    out = capsys.readouterr().out
    main(tune_args(tmp_path / "b"))
    first, second = (trials_of(f"sqlite:///{tmp_path / x / 'tune.db'}") for x in "ab")
    assert first == second and len(first) == 2  # same params, values, curves, states
    for trials in first.values():
        done = [t for t in trials if t[1] in ("COMPLETE", "PRUNED")]
        assert len(done) == 3 and len(trials) == 3  # the budget exactly, nothing failed
        complete = [t for t in trials if t[1] == "COMPLETE"]
        assert complete and all({"IS", "precision", "recall", "copies", "fd_curve"}
                                <= set(t[4]) for t in complete)
    tuned = yaml.safe_load((tmp_path / "a" / "tuned.yaml").read_text())
    for loss in ("bce", "hinge"):
        record = tuned["losses"][loss]
        assert record["trials"]["budget"] == 3 == record["trials"]["complete"] + record["trials"]["pruned"]
        assert record["budget"]["g_steps"] == 4 and set(record["params"]) == set(SPACE)
        assert record["run"].startswith("dvc exp run --queue") and "-S seed=0,1,2" in record["run"]
        assert f"-S loss={loss}" in record["run"] and record["run"] in out
        assert f"tune {loss}: 3 of 3 trials (" in out
    report = tmp_path / "a" / "out"
    assert {p.name for p in report.iterdir()} >= {"tuning_curve.png", "trial_spread.png", "tune.md"}
    summary = (report / "tune.md").read_text()
    assert "3 trials per loss" in summary
    # a share a person reads is in percent (the tuned file keeps the fraction)
    assert "| near-copies |" in summary and re.search(r"\| \d+\.\d\d% \|", summary)


@pytest.mark.slow
def test_rerunning_a_finished_study_trains_nothing_more(tmp_path, capsys, monkeypatch):
    from dcgan.cli import main
    from dcgan.tuning import command

    args = tune_args(tmp_path, "--losses", "bce", "--no-mlflow")
    main(args)
    before = trials_of(f"sqlite:///{tmp_path / 'tune.db'}")
    monkeypatch.setattr(command, "halves", lambda *a: pytest.fail("prepared data again"))
    main(args)
    assert trials_of(f"sqlite:///{tmp_path / 'tune.db'}") == before
    assert "3 of 3 trials done" in capsys.readouterr().out


@pytest.mark.slow
def test_a_study_logs_a_parent_run_and_one_nested_run_per_trial(tmp_path, mlflow_store):
    import mlflow

    from dcgan.cli import main

    main(tune_args(tmp_path, "--losses", "bce"))
    client = mlflow.MlflowClient(mlflow_store)
    exp = client.get_experiment_by_name("dcgan-tune")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("kind") == "study"]
    trials = [r for r in runs if r.data.tags.get("kind") == "trial"]
    assert len(trials) == 3 and all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id
                                    for r in trials)
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials.budget"] == 3
    assert {f"best.{k}" for k in SPACE} <= set(parent.data.params)
    study_files = {f.path for f in client.list_artifacts(parent.info.run_id, "study")}
    assert {"study/tuning_curve.png", "study/trial_spread.png", "study/tuned.yaml"} <= study_files
    for run in trials:
        assert set(SPACE) <= set(run.data.params)
        curve = client.get_metric_history(run.info.run_id, "fd")
        assert curve and all(m.step > 0 for m in curve)
        if run.info.status == "FINISHED":  # complete: final scores and the last grid
            assert {"final.IS", "final.precision", "final.copies"} <= set(run.data.metrics)
            assert [f.path for f in client.list_artifacts(run.info.run_id)][0].endswith(".png")
        else:
            assert run.info.status == "KILLED"  # pruned


@pytest.mark.slow
def test_missing_data_fails_in_one_line_and_fails_no_trial(tmp_path, capsys):
    from dcgan.cli import main

    args = tune_args(tmp_path, "--losses", "bce", "--no-mlflow")
    args[args.index("--dataset") + 1] = f"idx:{tmp_path / 'nowhere'}"
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and err[-1].startswith("error: ") and "nowhere" in err[-1]
    assert all(t == [] for t in trials_of(f"sqlite:///{tmp_path / 'tune.db'}").values())
