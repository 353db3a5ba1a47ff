"""Every `gateway …` command the README and the runbook show is one the command line accepts, with those
options: a renamed command or option fails here before a newcomer or an operator copies it (the commands are
parsed, not run; the runbook's `gw …` is `gateway …` run as the service's user)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gateway.cli.parser import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


def readme_commands(document: Path = README) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", document.read_text(), re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            code = re.split(r"\s#\s", line)[0].strip()  # a comment after the command
            if code.startswith("gw ") and "{" not in code:
                code = "gateway " + code[len("gw "):]
            if code.startswith("T=$(gateway "):
                code = code[len("T=$("):-1]
            if code.startswith(".venv/bin/gateway "):
                code = code[len(".venv/bin/"):]
            if code.startswith("gateway ") and "|" not in code:
                commands.append(code)
            elif code.startswith("gateway ") and " | " in code:  # "keys init | keys rotate": both
                first, second = (part.strip() for part in code.split(" | "))
                commands += [first, "gateway " + second]
    return commands


def test_the_readme_shows_commands():
    assert len(readme_commands()) >= 20


def test_the_runbook_shows_commands():
    assert len(readme_commands(RUNBOOK)) >= 10


@pytest.mark.parametrize("command", readme_commands() + readme_commands(RUNBOOK))
def test_each_command_of_the_readme_and_the_runbook_parses(command):
    try:
        build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit as exc:
        pytest.fail(f"the command line refuses `{command}` (exit {exc.code})")
