"""Which installed distributions differ from the committed lock (requirements/lock.txt).

`make test` installs the lock exactly; `make test-latest` (the canary) installs the newest
versions pyproject.toml allows. tests/conftest.py prints the difference in pytest's header,
and again at the end of a run with failures, so that a red canary names the releases to
suspect. Also a script:

    .venv-latest/bin/python tests/lock_diff.py [requirements/lock.txt]
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements" / "lock.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """{canonical name: version} of every `name==version` line."""
    pins = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    return {
        canonical(dist.metadata["Name"]): dist.version for dist in metadata.distributions() if dist.metadata["Name"]
    }


def differences(path: Path = LOCK) -> list[str]:
    """'name installed (lock locked)' for every locked distribution installed at another version or missing."""
    if not path.is_file():
        return [f"no lock file at {path}"]
    present = installed()
    return [
        f"{name} {present.get(name, 'missing')} (lock {version})"
        for name, version in sorted(read_lock(path).items())
        if present.get(name) != version
    ]


def summary(path: Path = LOCK) -> str:
    diff = differences(path)
    if not diff:
        return f"installed versions: all as in {path.name}"
    return f"installed versions differing from {path.name} ({len(diff)}): " + ", ".join(diff)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1]) if len(sys.argv) > 1 else LOCK))
