"""params.yaml validation: every bad value fails with one line naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from dcgan.config import ConfigError, flatten, load_params
from helpers import PARAMS, REPO



def test_repo_params_load():
    params = load_params(PARAMS)
    assert params.dataset == "fashion-mnist" and params.loss == "bce"
    assert params.preprocess.max_images is None and flatten(params)["preprocess.max_images"] == "all"


def test_params_yaml_holds_no_null():
    """`dvc exp run -S` rewrites every null of params.yaml as an empty value: named words
    (auto, none, all, eager) keep a one-key change to a one-line diff."""
    def nulls(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from nulls(value, f"{prefix}{key}.")
            elif value is None:
                yield prefix + key

    assert list(nulls(yaml.safe_load(PARAMS.read_text()))) == []


@pytest.mark.parametrize("overrides, message", [
    ({"loss": "wasserstein"}, "loss: unknown value 'wasserstein'; allowed: bce, mse, hinge, wgan-gp"),
    ({"dataset": "cifar10"}, "dataset: unknown value 'cifar10'; allowed: fashion-mnist, mnist, "
                             "animal-faces, mnist-5k, fashion-900, idx:<dir>, folder:<dir>"),
    ({"dataset": "idx:"}, "dataset: 'idx:' needs a directory"),
    ({"dataset": 3}, "dataset: expected a string"),
    ({"seed": "zero"}, "seed: expected an integer, got 'zero'"),
    ({"seed": True}, "seed: expected an integer, got True"),
    ({"seed": 1.5}, "seed: expected an integer, got 1.5"),
    ({"seed": -1}, "seed: must be >= 0"),
    ({"preprocess.channels": 2}, "preprocess.channels: unknown value 2; allowed: 1, 3"),
    ({"preprocess.max_images": 0}, "preprocess.max_images: must be >= 1"),
    ({"preprocess.image_size": 48}, "preprocess.image_size: unsupported value 48; the DCGAN "
                                    "supports 28 or a power of two from 16 to 256"),
    ({"preprocess.colour": 3}, "preprocess.colour: unknown key; allowed in preprocess: "
                               "image_size, channels, max_images"),
    ({"epochz": 3}, "epochz: unknown key; allowed in params:"),
    ({"preprocess": 5}, "preprocess: expected a mapping"),
    ({"train.d_steps": None}, "train.d_steps: null is not a value here; write auto"),
    ({"train.d_steps": "two"}, "train.d_steps: expected an integer or auto, got 'two'"),
    ({"train.ema": None}, "train.ema: null is not a value here; write none"),
    ({"evaluate.inception": "yes"}, "evaluate.inception: expected true or false or auto, got 'yes'"),
    ({"loss": "wgan-gp", "train.d_batches": "separate"}, "train.d_batches: 'separate' cannot be "
                                                         "used with loss wgan-gp"),
])
def test_bad_values_fail_with_one_line(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_params(PARAMS, overrides)
    text = str(err.value)
    assert text.startswith("params.yaml: ") and message in text
    assert "\n" not in text


def test_missing_key_and_bad_yaml(tmp_path):
    data = yaml.safe_load(PARAMS.read_text())
    del data["preprocess"]["max_images"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="preprocess.max_images: missing"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("dataset: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.slow
def test_stage_rejects_bad_params_before_work(tmp_path):
    """A stage with a bad value prints one error line, exits non-zero and writes nothing."""
    data = yaml.safe_load(PARAMS.read_text())
    data["dataset"] = "imagenet"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    out = tmp_path / "raw"
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "download.py"),
                           "--params", str(tmp_path / "params.yaml"), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: params.yaml: dataset: unknown value 'imagenet'; allowed: fashion-mnist, mnist, "
        "animal-faces, mnist-5k, fashion-900, idx:<dir>, folder:<dir>"]
    assert not out.exists()


def test_config_choices_match_the_library():
    """config.py lists the choices without importing torch; they must agree with the library."""
    from dcgan import config, losses, models

    assert config.LOSS_NAMES == losses.LOSSES
    assert config.ACTIVATIONS == models.ACTIVATIONS and config.D_NORMS == models.D_NORMS
    assert config.G_UPSAMPLES == models.G_UPSAMPLES
    assert config.PENALTY_LOSSES == tuple(n for n in losses.LOSSES if losses.get(n).gradient_penalty)


def test_config_image_sizes_match_the_models():
    """config.py checks image sizes without torch; the DCGAN must accept exactly the same."""
    from dcgan import config, models

    def accepts(check, size):
        try:
            check(size)
        except ValueError:
            return False
        return True

    for size in range(0, 300):
        assert accepts(config.check_image_size, size) == accepts(models.check_image_size, size), size
    assert config.IMAGE_SIZES == models.supported_sizes()


@pytest.mark.parametrize("stage", ["download", "preprocess"])
def test_unsupported_image_size_stops_the_data_stages_before_any_work(tmp_path, monkeypatch,
                                                                      capsys, stage):
    """image_size 48 used to cost a download, a preprocess and a classifier before train died."""
    import runpy

    from dcgan.data import download, preprocess

    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(download, "download", no_work)
    monkeypatch.setattr(preprocess, "preprocess", no_work)
    data = yaml.safe_load(PARAMS.read_text())
    data["preprocess"]["image_size"] = 48
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setattr(sys, "argv", [stage, "--params", str(tmp_path / "params.yaml"),
                                      "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / "stages" / f"{stage}.py"), run_name="__main__")
    assert exit_.value.code == 2 and not (tmp_path / "out").exists()
    assert capsys.readouterr().err.splitlines() == [
        "error: params.yaml: preprocess.image_size: unsupported value 48; the DCGAN supports 28 or "
        "a power of two from 16 to 256 (auto: 28 for IDX sources, 64 for image folders)"]
