"""The two tests every chapter's checks get: the reference passes, wrong answers fail saying why."""

import pytest

from miniclip import checks


def reference_and_wrong_answer_tests(references, wrong_answers):
    """Test functions for a module's REFERENCES [(check, reference)] and WRONG_ANSWERS
    [(check, {name: (answer, fragment of the failure message)})]."""

    @pytest.mark.parametrize("check, reference", references, ids=lambda x: getattr(x, "__name__", ""))
    def test_reference_passes_with_one_line(check, reference, capsys):
        check(reference)
        out = capsys.readouterr()
        assert out.out.startswith("✓ ") and out.out.count("\n") == 1, out.out
        assert out.err == "", out.err  # the notebooks compare stderr: no progress bars, no warnings

    @pytest.mark.parametrize(
        "check, answer, fragment",
        [(check, answer, fragment) for check, wrong in wrong_answers
         for answer, fragment in wrong.values()],
        ids=[f"{check.__name__}-{name}" for check, wrong in wrong_answers for name in wrong],
    )
    def test_wrong_answer_fails_and_says_why(check, answer, fragment):
        with pytest.raises(checks.CheckFailed) as failure:
            check(answer)
        assert fragment in str(failure.value), str(failure.value)

    return test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why
