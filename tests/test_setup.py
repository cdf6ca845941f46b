"""The ways in agree: the README's two commands, CI's script and the conda file install the
same tested versions, CI runs the README's test command, and it tests the oldest torch and
transformers that pyproject.toml accepts."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
CONDA = (ROOT / "environment.yml").read_text(encoding="utf-8")
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    """The command lines of the README's first code block: setup-and-train, then the tests."""
    block = re.search(r"```bash\n(.*?)```", README, re.DOTALL).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def pins(text: str, package: str) -> list[str]:
    """The versions `text` pins `package` at, in order: "torch==2.13.0" -> ["2.13.0"]."""
    return re.findall(rf"(?<![\w-]){re.escape(package)}==([\w.]+)", text)


def requirement(package: str) -> str:
    """pyproject.toml's requirement on `package`, as written: "torch>=2.6"."""
    return re.search(rf'^\s*"({re.escape(package)}[^"]*)"', PYPROJECT, re.MULTILINE).group(1)


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def test_the_readme_has_two_commands_that_install_the_tested_torch_first():
    commands = readme_commands()
    assert len(commands) == 2, commands
    for command in commands:
        steps = command.split(" && ")
        torch_step = next(i for i, step in enumerate(steps) if pins(step, "torch"))
        project_step = next(i for i, step in enumerate(steps) if "pip install -e" in step)
        assert torch_step < project_step, f"torch must come before the project: {command}"


def test_readme_ci_and_conda_install_the_same_torch_first():
    readme = set(pins(" ".join(readme_commands()), "torch"))
    first_in_ci = pins(CI, "torch")[0]
    assert len(readme) == 1 and readme == {first_in_ci} == set(pins(CONDA, "torch")), (readme, first_in_ci, CONDA)
    assert floor("torch") <= version(first_in_ci), "pyproject.toml excludes the tested torch"


def test_readme_and_ci_install_the_same_open_clip_reference():
    readme, ci = set(pins(README, "open_clip_torch")), set(pins(CI, "open_clip_torch"))
    assert len(readme) == 1 and readme == ci, (readme, ci)
    assert re.search(r"--no-deps open_clip_torch==", CI), "open_clip's own dependencies would pull torchvision"


def test_ci_runs_the_readme_test_command_with_the_dev_extra():
    tests = readme_commands()[1]
    assert tests.endswith("pytest --nbval"), tests
    assert re.search(r"^python -m pytest --nbval$", CI, re.MULTILINE), "CI must run the README's test command"
    for setup in (tests, CI, CONDA):
        assert '.[dev]' in setup, setup
    assert re.search(r"^dev = \[", PYPROJECT, re.MULTILINE), "pyproject.toml has no dev extra"


def floor(package: str) -> tuple[int, ...]:
    """The oldest version that pyproject.toml accepts, as three numbers: "torch>=2.6" -> (2, 6, 0)."""
    numbers = version(requirement(package))
    return numbers + (0,) * (3 - len(numbers))


def test_ci_tests_the_oldest_torch_and_transformers_that_pyproject_accepts():
    for package in ("torch", "transformers"):
        assert floor(package) in {version(pin) for pin in pins(CI, package)}, (package, pins(CI, package))
