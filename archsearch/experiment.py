"""An experiment folder: ``experiment.yaml`` names its task, space, objective and defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from .errors import SpecError
from .validation import Strict, validate
from .yamlio import read_yaml

DEFAULT_EXPERIMENT = "experiments/humaneval-local"


class ExperimentFile(Strict):
    task: str = "task.yaml"
    space: str = "../../spaces/sampling.yaml"
    objective: str = "../../objectives/default.yaml"
    trials: int = Field(30, ge=1, le=100_000)
    seed: int = 0
    study: str | None = None
    description: str = ""


class Experiment:
    def __init__(self, folder: str | Path) -> None:
        self.dir = Path(folder)
        if self.dir.name == "experiment.yaml" and self.dir.is_file():   # the file itself: its folder
            self.dir = self.dir.parent
        file = self.dir / "experiment.yaml"
        if not self.dir.is_dir():
            raise SpecError(str(self.dir), "", "no such experiment folder (expected a folder with experiment.yaml)")
        self.config = validate(ExperimentFile, read_yaml(file), str(file)) if file.exists() else ExperimentFile()
        self.out_dir = self.dir / "out"

    def path(self, relative: str) -> Path:
        return (self.dir / relative).resolve()


def default_experiment() -> Path:
    """``experiments/humaneval-local`` under the current folder, else next to the installed package."""
    here = Path.cwd() / DEFAULT_EXPERIMENT
    if here.is_dir():
        return here
    beside = Path(__file__).resolve().parent.parent / DEFAULT_EXPERIMENT
    if beside.is_dir():
        return beside
    raise SpecError(DEFAULT_EXPERIMENT, "", "not found here: run from the repository root or name an experiment folder")
