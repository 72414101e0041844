from .extractors import EXTRACTORS
from .scorers import SCORERS
from .task import Question, Record, Task, render

__all__ = ["EXTRACTORS", "SCORERS", "Question", "Record", "Task", "render"]
