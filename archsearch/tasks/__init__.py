from .extractors import EXTRACTORS
from .record import Question, Record
from .scorers import SCORERS
from .task import Task, render

__all__ = ["EXTRACTORS", "SCORERS", "Question", "Record", "Task", "render"]
