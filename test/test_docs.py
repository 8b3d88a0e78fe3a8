"""The README and docs/ stay true to the code: every documented command parses, every launch file and launch argument
exists, and every parameter, diagnostics key or option name they quote still appears in the package."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from snn_sac_ros import bringup
from snn_sac_ros.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: names quoted in the docs that are not the package's own: ROS 2, ros2_control and gymnasium names, a prefix
FOREIGN = {"joint_state_broadcaster", "forward_command_controller", "check_env", "left_", "robot_state_publisher",
           "offered_qos_profiles", "interface_name", "read_messages", "serialize_message"}


def _shell_lines(text: str) -> list[str]:
    """The lines of every fenced shell block: continuations joined, comments, optional parts and shell variables
    (as in a loop) taken out."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for raw in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = re.sub(r"\$\{?\w+\}?", "0", raw)
            line = re.sub(r"\s+#.*$", "", line).strip()
            lines.append(re.sub(r"\[[^\]]*\]", "", line))
    return lines


def _command_lines() -> list[tuple[str, str]]:
    """(doc, command line) for every snn-sac-ros command in a fenced shell block."""
    found = []
    for doc in DOCS:
        for line in _shell_lines(doc.read_text()):
            match = re.match(r"^(?:\w+=\S+\s+)*(?:\./dev\.sh (?:run )?|snn-sac-ros )(.*)$", line)
            if match and not line.startswith(("./dev.sh test", "./dev.sh demo")):
                found.append((doc.name, match.group(1)))
            elif line.startswith("./dev.sh demo "):
                found.append((doc.name, line.removeprefix("./dev.sh ")))
    return found


@pytest.mark.parametrize(("doc", "command"), _command_lines())
def test_every_documented_command_parses(doc: str, command: str) -> None:
    argv = shlex.split(command)
    try:
        build_parser(argv).parse_args(argv)
    except SystemExit as exit_:
        pytest.fail(f"{doc}: `snn-sac-ros {command}` no longer parses (exit {exit_.code})")


def test_the_docs_document_commands_at_all() -> None:
    assert len(_command_lines()) > 20


def test_every_documented_launch_file_and_argument_exists() -> None:
    arguments = {"sim_reach.launch.py": set(bringup.SIM_REACH_ARGUMENTS),
                 "controller.launch.py": set(bringup.CONTROLLER_ARGUMENTS)}
    seen = 0
    for doc in DOCS:
        for name, rest in re.findall(r"ros2 launch snn_sac_ros (\S+)([^\n`]*)", doc.read_text()):
            if name.startswith("<"):
                continue  # a placeholder
            assert (ROOT / "launch" / name).exists(), f"{doc.name}: launch/{name} does not exist"
            for argument in re.findall(r"(\w+):=", rest):
                assert argument in arguments[name], f"{doc.name}: {name} has no argument {argument!r}"
            seen += 1
    assert seen >= 3


def test_every_quoted_name_still_exists_in_the_package() -> None:
    """A parameter, diagnostics key or option renamed in the code but not in the docs fails here."""
    sources = "\n".join(p.read_text() for pattern in ("snn_sac_ros/**/*.py", "config/**/*.yaml", "launch/*.py")
                        for p in ROOT.glob(pattern))

    def generated(name: str) -> bool:  # as f"cost_{key}" makes cost_spikes from "spikes"
        return any(f'f"{name[:i]}{{' in sources and f'"{name[i:]}"' in sources for i in range(1, len(name)))

    missing = set()
    for doc in DOCS:
        for name in set(re.findall(r"`([a-z][a-z0-9]*_[a-z0-9_]*)`", doc.read_text())):
            if name not in FOREIGN and name not in sources and not generated(name):
                missing.add(f"{doc.name}: {name}")
    assert not missing, f"quoted in the docs, found nowhere in the package: {sorted(missing)}"
