"""CI runs exactly the README's test command, and that command brings Debian's Chromium for the
browser tests when the machine lacks it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/lib/chromium/chromium"


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("**Run the whole test suite**", 1)[1]
    block = re.search(r"```sh\n(.+?)\n```", section, re.DOTALL)
    assert block is not None, "the README's test command is a ```sh block"
    (command,) = block.group(1).splitlines()  # one line a person can copy
    return command


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in script if line and not line.startswith("#")]
    assert commands[:2] == ["set -euo pipefail", 'cd "$(dirname "$0")/.."']
    assert commands[2:] == [_readme_test_command()]


def test_the_test_command_installs_chromium_only_when_it_is_missing() -> None:
    command = _readme_test_command()
    assert command.startswith(f"(test -x {CHROMIUM} || (apt-get update -qq && "
                              "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium")
    assert command.endswith(".venv/bin/python -m pytest -q")
    # The browser tests drive the same binary the command checks for.
    support = (ROOT / "tests" / "browser" / "support.py").read_text()
    assert f'CHROMIUM = Path("{CHROMIUM}")' in support
