"""tests/lock_diff.py names the installed versions that differ from a lock (what a red canary prints)."""

from __future__ import annotations

from importlib import metadata

from tests.lock_diff import LOCK, differences, read_lock, summary


def test_lock_lists_exact_pins_of_the_libraries_we_lean_on():
    pins = read_lock(LOCK)
    for name in ("transformers", "lm-eval", "peft", "accelerate", "datasets"):
        assert pins.get(name), f"{name} is not pinned in {LOCK}"
    assert "torch" not in pins  # pinned apart by the Makefile, installed first


def test_differences_name_the_library_its_version_and_the_locked_one(tmp_path):
    transformers = metadata.version("transformers")
    lock = tmp_path / "lock.txt"
    lock.write_text(f"# a comment\ntransformers=={transformers}\npeft==0.0.1\nsurely-not-installed-icl-ft==1.0\n")
    assert differences(lock) == [
        f"peft {metadata.version('peft')} (lock 0.0.1)",
        "surely-not-installed-icl-ft missing (lock 1.0)",
    ]
    assert summary(lock).startswith("installed versions differing from lock.txt (2): peft ")
    lock.write_text(f"Transformers=={transformers}\n")  # names compare case- and separator-insensitively
    assert differences(lock) == [] and summary(lock) == "installed versions: all as in lock.txt"
    assert differences(tmp_path / "absent.txt") == [f"no lock file at {tmp_path / 'absent.txt'}"]
