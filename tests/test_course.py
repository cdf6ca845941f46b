"""The course machinery: chapters/ is generated from solutions/, and its figures read right."""

import nbformat
import pytest
import torch

from miniclip import course, plots
from miniclip.attention import causal_mask, padding_mask

SOLVED = course.solved_notebooks()


def notebook(*cells):
    """A notebook from (cell_type, source, tags) triples."""
    nb = nbformat.v4.new_notebook()
    for index, (kind, source, tags) in enumerate(cells):
        cell = (nbformat.v4.new_code_cell(source, execution_count=1, outputs=[
            nbformat.v4.new_output("stream", text="done\n")])
            if kind == "code" else nbformat.v4.new_markdown_cell(source))
        cell.id = f"cell-{index}"
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    return nb


EXERCISE = '''def double(x):
    """Twice x."""
    # BEGIN SOLUTION
    y = x + x
    return y
    # END SOLUTION'''


# ---- chapters/ in sync ----------------------------------------------------------------


def test_check_command_passes_on_the_committed_chapters(capsys):
    """`python -m miniclip.course check`, run in this process."""
    assert course.main(["check"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("path", SOLVED, ids=lambda path: path.name)
def test_build_is_deterministic(path):
    first = nbformat.writes(course.exercise_notebook(course.read(path), path.name))
    second = nbformat.writes(course.exercise_notebook(course.read(path), path.name))
    assert first == second


def test_stale_missing_and_orphan_chapters_are_reported(tmp_path):
    solutions, chapters = tmp_path / "solutions", tmp_path / "chapters"
    solutions.mkdir()
    solved = notebook(("markdown", "# Title", []), ("code", EXERCISE, ["exercise"]))
    course.write(solved, solutions / "01_a.ipynb")
    course.build(solutions=solutions, chapters=chapters, run=False)
    assert course.stale(solutions, chapters) == []

    solved.cells[1].source = EXERCISE.replace("Twice x.", "Two times x.")
    course.write(solved, solutions / "01_a.ipynb")
    course.write(solved, solutions / "02_b.ipynb")
    course.write(solved, chapters / "99_orphan.ipynb")
    assert course.stale(solutions, chapters) == [
        "01_a.ipynb: cell 2 differs in source",
        "02_b.ipynb: missing from chapters/",
        "99_orphan.ipynb: has no solved notebook in solutions/",
    ]


# ---- what the build does to a cell ----------------------------------------------------


def test_solution_block_becomes_a_placeholder_below_the_signature():
    exercise = course.exercise_notebook(notebook(("code", EXERCISE, ["exercise"])), "x.ipynb")
    banner, cell = exercise.cells
    assert banner.id == course.BANNER_ID and "solutions/x.ipynb" in banner.source
    assert cell.source == ('def double(x):\n    """Twice x."""\n'
                           '    raise NotImplementedError("Your code here")')
    assert cell.metadata["tags"] == ["exercise"]
    assert cell.outputs == [] and cell.execution_count is None


def test_top_level_block_marks_the_cell_as_raising():
    source = "# Compute the answer:\n# BEGIN SOLUTION\nanswer = 42\n# END SOLUTION\nprint(answer)"
    cell = course.exercise_notebook(notebook(("code", source, ["exercise"])), "x.ipynb").cells[1]
    assert cell.source == ('# Compute the answer:\nraise NotImplementedError("Your code here")\n'
                           "print(answer)")
    assert cell.metadata["tags"] == ["exercise", "raises-exception"]


def test_other_cells_are_copied_unchanged():
    cells = [("markdown", "Some *prose*.", []), ("code", "x = 1\nx", ["nbval-ignore-output"])]
    exercise = course.exercise_notebook(notebook(*cells), "x.ipynb")
    assert [(c.cell_type, c.source, c.metadata["tags"]) for c in exercise.cells[1:]] == [
        ("markdown", "Some *prose*.", []), ("code", "x = 1\nx", ["nbval-ignore-output"])]


@pytest.mark.parametrize("source, tags, message", [
    ("# BEGIN SOLUTION\nx = 1", ["exercise"], "never closed"),
    ("x = 1\n# END SOLUTION", ["exercise"], "without a BEGIN"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION", ["exercise"], "inside the block"),
    ("# BEGIN SOLUTION\n# END SOLUTION", ["exercise"], "empty solution block"),
    (EXERCISE, [], "no 'exercise' tag"),
    ("x = 1", ["exercise"], "has no # BEGIN SOLUTION"),
])
def test_broken_markers_are_refused_with_the_place(source, tags, message):
    with pytest.raises(course.MarkerError, match=message) as error:
        course.exercise_notebook(notebook(("code", source, tags)), "x.ipynb")
    assert "solutions/x.ipynb, cell 0" in str(error.value)


# ---- the conventions of docs/COURSE_AUTHORING.md --------------------------------------


@pytest.mark.parametrize("path", SOLVED, ids=lambda path: path.name)
def test_every_exercise_has_a_statement_before_and_a_check_after(path):
    cells = course.read(path).cells
    exercises = [i for i, cell in enumerate(cells) if course.EXERCISE_TAG in course.tags(cell)]
    assert exercises, f"{path.name} has no exercise"
    for index in exercises:
        statement = next(cell for cell in reversed(cells[:index]) if cell.cell_type == "markdown")
        for part in ("**Difficulty** 🔴", "**Importance** 🔵", "minutes", "<details>"):
            assert part in statement.source, f"{path.name}, cell {index}: statement lacks {part!r}"
        check = cells[index + 1]
        assert check.cell_type == "code" and "checks.check_" in check.source, (
            f"{path.name}, cell {index}: the next cell should run a check")


HANGS_ONCE = """import pathlib, time
marker = pathlib.Path("tried")
if not marker.exists():
    marker.write_text("once")
    time.sleep(60)
print("ran")"""


def test_a_kernel_that_stops_answering_gets_one_more_try(tmp_path, capfd):
    ran = course.execute(notebook(("code", HANGS_ONCE, [])), tmp_path, timeout=5)
    assert ran.cells[0].outputs[0].text == "ran\n"
    assert "running the notebook again (2 of 2)" in capfd.readouterr().err


def test_a_kernel_that_never_answers_is_an_error(tmp_path):
    from nbclient.exceptions import CellTimeoutError

    with pytest.raises(CellTimeoutError):
        course.execute(notebook(("code", "import time; time.sleep(60)", [])), tmp_path,
                       timeout=3, attempts=1)


@pytest.mark.parametrize("path", SOLVED, ids=lambda path: path.name)
def test_solved_notebooks_are_committed_executed(path):
    unrun = [i for i, cell in enumerate(course.read(path).cells)
             if cell.cell_type == "code" and cell.execution_count is None]
    assert not unrun, f"run `python -m miniclip.course execute solutions/{path.name}`: {unrun}"


# ---- figures --------------------------------------------------------------------------


def texts(ax):
    return [label.get_text() for label in ax.get_xticklabels()]


def test_mask_figure_draws_each_mask_with_tokens_and_labels():
    labels = ["<sot>", "a", "dog", "<eot>", "<pad>"]
    attention_mask = torch.tensor([[1, 1, 1, 1, 0]])
    fig = plots.mask_figure({"causal": causal_mask(5), "padding": padding_mask(attention_mask)},
                            labels, title="masks")
    causal_ax, padding_ax = fig.axes
    assert fig.get_suptitle() == "masks" and causal_ax.get_title() == "causal"
    assert causal_ax.get_xlabel().startswith("key") and causal_ax.get_ylabel().startswith("query")
    assert texts(causal_ax) == labels
    assert (causal_ax.images[0].get_array() == torch.ones(5, 5).tril().numpy()).all()
    assert (padding_ax.images[0].get_array()[:, 4] == 0).all()  # the padding key, hidden


def test_attention_figure_greys_out_masked_weights():
    weights = torch.rand(2, 4, 4)
    fig = plots.attention_figure(weights, mask=causal_mask(4)[0, 0], title="weights")
    image = fig.axes[0].images[0].get_array()
    assert image.mask[0, 1] and not image.mask[1, 0]
    assert abs(image[1, 0] - weights[0, 1, 0].item()) < 1e-6
    assert fig.axes[-1].get_ylabel() == "attention weight"  # the colour bar


def test_token_labels_name_special_tokens_and_padding():
    from miniclip.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_openai()
    batch = tokenizer(["a photo of a cat", "a dog"], padding="longest")
    assert plots.token_labels(tokenizer, batch["input_ids"][1], batch["attention_mask"][1]) == [
        "<sot>", "a", "dog", "<eot>", "<pad>", "<pad>", "<pad>"]


def test_explorer_shows_the_typed_sentence():
    from miniclip import widgets
    from miniclip.tokenizer import Tokenizer

    model, tokenizer = widgets.explorer_model(), Tokenizer.from_openai()
    labels, ids, fig = widgets.explore(model, tokenizer, "A red circle", pad_to=8, layer=1, head=3)
    assert labels == ["<sot>", "a", "red", "circle", "<eot>", "<pad>", "<pad>", "<pad>"]
    assert ids[:5] == [49406, 320, 736, 7117, 49407]
    causal_ax, padding_ax, combined_ax, weights_ax = fig.axes[:4]
    assert all(texts(ax) == labels for ax in (causal_ax, padding_ax, combined_ax, weights_ax))
    assert weights_ax.get_title() == "attention weights, layer 1, head 3"
    weights = weights_ax.images[0].get_array()
    assert weights.mask[:, 5:].all()  # padding keys, hidden
    assert abs(weights.sum(axis=1)[:5] - 1).max() < 1e-5  # each real query's weights sum to 1

    explorer = widgets.attention_explorer("a dog", model=model, tokenizer=tokenizer)
    sentence, tokens = explorer.children[0], explorer.children[2]
    sentence.value = "a photo of a cat"
    assert "photo" in tokens.value and "16 tokens" in tokens.value  # padded to the default 16
