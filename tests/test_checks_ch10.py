"""The checks of chapters 00 and 10 accept miniclip's reference and reject plausible wrong
answers, saying why: prompt probabilities, prompt ensembling, zero-shot accuracy, recall@K."""

import pytest
import torch
import torch.nn.functional as F
from check_cases import reference_and_wrong_answer_tests

from miniclip import checks, evaluate
from miniclip.checks.ch00_tour import prompt_probabilities
from miniclip.checks.ch10_evaluate import ACCURACY_CASES, RECALL_CASES, accuracy_case, recall_case

REFERENCES = [
    (checks.check_prompt_probabilities, prompt_probabilities),
    (checks.check_class_vectors, evaluate.class_vectors),
    (checks.check_zero_shot_accuracy, evaluate.zero_shot_accuracy),
    (checks.check_recall_at_k, evaluate.recall_at_k),
]


# ---- chapter 00: prompt_probabilities ------------------------------------------------------


def probabilities_in_place(image_embeds, text_embeds, logit_scale):
    image_embeds *= logit_scale.exp()
    return (image_embeds @ text_embeds.t()).softmax(dim=-1)


WRONG_PROMPT_PROBABILITIES = {
    "softmax over images": (
        lambda i, t, s: (s.exp() * i @ t.t()).softmax(dim=0), "dim=-1"),
    "scale not exponentiated": (
        lambda i, t, s: (s * i @ t.t()).softmax(dim=-1), "logarithm of the scale"),
    "no scale": (lambda i, t, s: (i @ t.t()).softmax(dim=-1), "not scaled"),
    "labels by images": (
        lambda i, t, s: (s.exp() * t @ i.t()).softmax(dim=-1), "one row per image"),
    "logits": (lambda i, t, s: s.exp() * i @ t.t(), "take their softmax"),
    "in place": (probabilities_in_place, "in place"),
}


# ---- chapter 10: class_vectors --------------------------------------------------------------


def class_vectors_with(order="class", view="class", renormalise=True, templates_used=None,
                       transpose=False, mean_over_classes=False):
    def wrong(encoder, classnames, templates):
        templates = templates[:templates_used] if templates_used else templates
        if order == "class":
            prompts = [t.format(name) for name in classnames for t in templates]
        else:
            prompts = [t.format(name) for t in templates for name in classnames]
        features = encoder.texts(prompts)
        if view == "class":
            grouped = features.view(len(classnames), len(templates), -1)
        else:
            grouped = features.view(len(templates), len(classnames), -1).transpose(0, 1)
        vectors = grouped.mean(dim=0 if mean_over_classes else 1)
        vectors = F.normalize(vectors, dim=-1) if renormalise else vectors
        return vectors.t() if transpose else vectors
    return wrong


WRONG_CLASS_VECTORS = {
    "not renormalised": (class_vectors_with(renormalise=False), "normalise it again"),
    "OpenAI's orientation": (class_vectors_with(transpose=True), "dim=1, giving (D, C)"),
    "mean over classes": (class_vectors_with(mean_over_classes=True), "not over the classes"),
    "class order, template view": (class_vectors_with(view="template"), "must agree"),
    "template order, class view": (class_vectors_with(order="template"), "must agree"),
    "first template only": (class_vectors_with(templates_used=1), "only the first template"),
}


def test_prompt_order_does_not_matter_when_the_view_agrees(capsys):
    checks.check_class_vectors(class_vectors_with(order="template", view="template"))
    assert capsys.readouterr().out.startswith("✓ class_vectors")


# ---- chapter 10: zero_shot_accuracy ----------------------------------------------------------


def accuracy_with(use_limit=True, templates_used=None, scale=1.0, error_rate=False, as_list=False,
                  dataset_templates=False, clamp=True, dim=1):
    def wrong(encoder, dataset, templates, limit=None):
        count = len(dataset) if limit is None or not use_limit else min(limit, len(dataset))
        count = limit if limit is not None and not clamp else count
        templates = list(dataset.templates) if dataset_templates else templates
        templates = templates[:templates_used] if templates_used else templates
        images = [dataset[i][0] for i in range(count)]
        labels = torch.tensor([dataset.label(i) for i in range(count)])
        vectors = evaluate.class_vectors(encoder, dataset.classnames, templates)
        right = (encoder.images(images) @ vectors.t()).argmax(dim=dim) == labels
        if as_list:
            return right.tolist()
        accuracy = right.float().mean().item()
        return scale * ((1 - accuracy) if error_rate else accuracy)
    return wrong


WRONG_ZERO_SHOT_ACCURACY = {
    "limit ignored": (accuracy_with(use_limit=False), "with a limit"),
    "first template only": (accuracy_with(templates_used=1), "only the first template"),
    "percentage": (accuracy_with(scale=100.0), "percentage"),
    "error rate": (accuracy_with(error_rate=True), "error rate"),
    "one flag per image": (accuracy_with(as_list=True), "one number"),
    "templates argument ignored": (accuracy_with(dataset_templates=True),
                                   "made from dataset.templates; use the `templates` argument"),
    "limit beyond the data": (accuracy_with(clamp=False), "range(min(limit, len(dataset)))"),
    "argmax over the images": (accuracy_with(dim=0), "argmax over the classes, dim=1"),
}


def test_accuracy_may_be_a_zero_dimensional_tensor(capsys):
    def as_tensor(encoder, dataset, templates, limit=None):
        return torch.tensor(evaluate.zero_shot_accuracy(encoder, dataset, templates, limit))

    checks.check_zero_shot_accuracy(as_tensor)
    assert capsys.readouterr().out.startswith("✓ zero_shot_accuracy")


def test_accuracy_cases_are_neither_trivial_nor_all_alike():
    values = set()
    for seed, limit, templates in ACCURACY_CASES:
        encoder, dataset = accuracy_case(seed, templates)
        value = evaluate.zero_shot_accuracy(encoder, dataset, list(templates), limit)
        assert 0.2 < value < 0.9
        values.add(round(value, 4))
    assert len(values) == len(ACCURACY_CASES)


def test_zero_shot_predictions_embed_the_images_once_for_every_set_of_templates(monkeypatch):
    encoder, dataset = accuracy_case(1)
    templates = list(dataset.templates)
    sets = {"ensemble": templates, "single": templates[:1]}
    embedded, embed = [], encoder.images

    def counted(images):
        embedded.append(len(images))
        return embed(images)

    monkeypatch.setattr(encoder, "images", counted)
    predictions, labels = evaluate.zero_shot_predictions(encoder, dataset, sets, limit=9)
    assert embedded == [9] and len(labels) == 9  # one call, for both sets
    for name, chosen in predictions.items():  # each set as zero_shot_accuracy measures it alone
        accuracy = (chosen == labels).float().mean().item()
        assert accuracy == pytest.approx(evaluate.zero_shot_accuracy(encoder, dataset, sets[name], 9))
    assert not torch.equal(predictions["ensemble"], predictions["single"])


# ---- chapter 10: recall_at_k -------------------------------------------------------------


def recall_with(i2t="any", t2i="own", largest=True, clamp=True, swap=False, keys="{}_recall@{}",
                i2t_cap="texts"):
    """A recall_at_k with one deliberate mistake, named by its arguments."""
    def wrong(image_features, text_features, text_to_image, ks=(1, 5, 10)):
        similarity = image_features @ text_features.t()
        n_images, n_texts = similarity.shape
        owners = text_to_image if i2t != "diagonal" else torch.arange(n_texts)
        is_caption = owners[None, :] == torch.arange(n_images)[:, None]
        results = {}
        for k in ks:
            cap = n_texts if i2t_cap == "texts" else n_images
            top_texts = similarity.topk(min(k, cap) if clamp else k, dim=1, largest=largest).indices
            in_top = torch.zeros_like(is_caption).scatter(1, top_texts, True)
            if i2t == "first":
                firsts = is_caption.int().argmax(dim=1)
                found = in_top.gather(1, firsts[:, None])[:, 0]
            elif i2t == "every":
                found = (in_top | ~is_caption).all(dim=1)
            elif i2t == "per caption":
                found = in_top[text_to_image, torch.arange(n_texts)]
            elif i2t == "distinct":  # the first K images of the ranking, not its first K texts
                found = torch.tensor([image in list(dict.fromkeys(
                    owners[row.argsort(descending=True)].tolist()))[:k]
                    for image, row in enumerate(similarity)])
            else:
                found = (in_top & is_caption).any(dim=1)
            results[keys.format("i2t", k)] = found.float().mean().item()
        owners = text_to_image if t2i != "diagonal" else torch.arange(n_texts)
        for k in ks:
            top_images = similarity.t().topk(min(k, n_images) if clamp else k, dim=1,
                                             largest=largest).indices
            found = (top_images == owners[:, None]).any(dim=1).float()
            if t2i == "per image":  # each image's share of captions that find it, then the mean
                found = torch.stack([found[owners == image].mean() for image in range(n_images)])
            results[keys.format("t2i", k)] = found.mean().item()
        if swap:
            results = {key.replace("i2t", "x").replace("t2i", "i2t").replace("x", "t2i"): value
                       for key, value in results.items()}
        return results
    return wrong


WRONG_RECALLS = {
    "directions swapped": (recall_with(swap=True), "swapped"),
    "least similar first": (recall_with(largest=False), "least similar first"),
    "first caption only": (recall_with(i2t="first"), "first caption"),
    "every caption required": (recall_with(i2t="every"), "ALL its captions"),
    "averaged over captions": (recall_with(i2t="per caption"), "averaged over captions"),
    "text j is image j's (i2t)": (recall_with(i2t="diagonal"), "belong to image j"),
    "text j is image j's (t2i)": (recall_with(t2i="diagonal"), "belong to image j"),
    "k not clamped": (recall_with(clamp=False), "topk(min(k, n))"),
    "i2t k capped at the images": (recall_with(i2t_cap="images"), "capped at the number of images"),
    "other key names": (recall_with(keys="{}@{}"), "keys"),
    "first K distinct images": (recall_with(i2t="distinct"), "first K distinct images"),
    "t2i averaged per image": (recall_with(t2i="per image"), "averaged per image"),
}


def test_recall_cases_are_neither_trivial_nor_perfect():
    for images, counts, noise, ks, seed in RECALL_CASES:
        image_features, text_features, owners = recall_case(images, counts, noise, seed)
        recalls = evaluate.recall_at_k(image_features, text_features, owners, ks)
        assert 0 < recalls["i2t_recall@1"] < 1 and 0 < recalls["t2i_recall@1"] < 1, recalls
        assert owners.tolist() != sorted(owners.tolist())  # captions scattered, not grouped


@pytest.mark.parametrize("case", RECALL_CASES[:2], ids=["case 1", "case 2"])
def test_each_image_to_text_mistake_gives_recalls_of_its_own(case):
    """Otherwise a learner who made one mistake could be told the hint of another."""
    images, counts, noise, ks, seed = case
    image_features, text_features, owners = recall_case(images, counts, noise, seed)
    answers = {"right": evaluate.recall_at_k}
    answers.update({name: answer for name, (answer, _) in WRONG_RECALLS.items()
                    if name not in ("k not clamped", "other key names", "t2i averaged per image",
                                    "first K distinct images")})  # the last: only case 4 shows it
    if max(ks) <= images:  # no K to cap: this case cannot tell the cap from the right answer
        del answers["i2t k capped at the images"]
    seen = {}
    for name, answer in answers.items():
        got = answer(image_features, text_features, owners, ks)
        key = tuple(round(got[f"i2t_recall@{k}"], 6) for k in ks)
        if name != "text j is image j's (t2i)":  # a text-to-image mistake: same i2t as "right"
            assert key not in seen, f"{name} and {seen.get(key)} give the same recalls"
            seen[key] = name


# ---- shared ------------------------------------------------------------------------------

WRONG_ANSWERS = [
    (checks.check_prompt_probabilities, WRONG_PROMPT_PROBABILITIES),
    (checks.check_class_vectors, WRONG_CLASS_VECTORS),
    (checks.check_zero_shot_accuracy, WRONG_ZERO_SHOT_ACCURACY),
    (checks.check_recall_at_k, WRONG_RECALLS),
]


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, WRONG_ANSWERS)


def test_recall_failure_names_the_key_expected_and_got():
    with pytest.raises(checks.CheckFailed) as failure:
        checks.check_recall_at_k(recall_with(i2t="first"))
    assert str(failure.value).startswith("recall_at_k: recall_at_k for 5 images with 1 to 4 captions "
                                         "each (12 texts), K = 1, 3, 10['i2t_recall@")


@pytest.mark.parametrize("name", ["prompt_probabilities", "class_vectors", "zero_shot_accuracy",
                                  "recall_at_k"])
def test_show_solution_prints_the_reference(name, capsys):
    checks.show_solution(name)
    out = capsys.readouterr().out
    assert f"def {name}(" in out


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for check, reference in REFERENCES:
        check(reference)
    assert torch.equal(torch.rand(3), expected)
