"""The little English that caption templates need: articles and lists.

Chapter 08 ("Caption data") uses it to write captions that read naturally:
"an orange circle", "a red circle, a blue star and a green cross".
"""


def with_article(phrase: str) -> str:
    """'a red circle', 'an orange circle', 'an ATM sign'."""
    return ("an " if phrase[:1].lower() in tuple("aeiou") else "a ") + phrase


def listing(phrases: list[str]) -> str:
    """'x', 'x and y', 'x, y and z'."""
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]
