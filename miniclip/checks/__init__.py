"""The checks that follow each exercise of the course.

Both versions of a chapter call them, solved (solutions/) and to be solved (chapters/):
`checks.check_causal_mask(causal_mask)` runs the learner's function or module on small
fixed inputs and compares it with miniclip's reference and, where one exists, with
transformers' own code. The outcome is one of three:

- "✓ causal_mask: ..." printed, when every case agrees;
- `CheckFailed` (an AssertionError) raised with a precise message: which case, which
  shape or which entry, expected and got, and a hint when the answer matches a mistake
  we know (softmax over the wrong axis, mask shifted by one, a missing scale, ...);
- "⏳ causal_mask: not written yet ..." printed, when the learner's code still raises
  NotImplementedError, so that an exercise notebook runs from top to bottom.

`show_solution("causal_mask")` prints the reference answer. Checks leave the global random
state alone and each runs in milliseconds. A new chapter adds its checks in a module of its
own in this package (imported below), and for each check a few wrong answers to
tests/test_checks_chNN.py.
"""

from miniclip.checks.ch00_tour import *
from miniclip.checks.ch01_tokenizer import *
from miniclip.checks.ch02_attention import *
from miniclip.checks.ch03_transformer import *
from miniclip.checks.ch04_text import *
from miniclip.checks.ch05_vision import *
from miniclip.checks.ch06_model import *
from miniclip.checks.ch07_loss import *
from miniclip.checks.ch08_data import *
from miniclip.checks.ch09_training import *
from miniclip.checks.ch10_evaluate import *
from miniclip.checks.ch11_reference import *
from miniclip.checks.ch12_limits import *
from miniclip.checks.core import CheckFailed, show_solution

__all__ = ["CheckFailed", "show_solution"] + [name for name in dir() if name.startswith("check_")]
