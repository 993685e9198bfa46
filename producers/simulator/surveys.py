"""Survey answers: satisfaction calibrated per channel, worse after a bad experience."""

from __future__ import annotations

import random

BAD_EXPERIENCE_RATIO = 3.0
"""How many times more often a bad experience (late ticket, long wait, reopening) ends in an
unsatisfied answer than a good one."""
_COMMENTS_GOOD = (
    "شكراً على سرعة الاستجابة",
    "Very helpful staff",
    "خدمة ممتازة",
    "Quick and clear",
)
_COMMENTS_BAD = ("تأخر الرد", "Took too long", "لم يتم حل المشكلة بالكامل", "Had to call twice")
COMMENT_SHARE = 0.05


def split_satisfaction(target: float, bad_share: float) -> tuple[float, float]:
    """(p_good, p_bad): satisfied shares after good and bad experiences.

    Chosen so that the expected satisfaction over both groups equals `target` for the given
    share of bad experiences, with BAD_EXPERIENCE_RATIO times the dissatisfaction after a bad one.
    """
    share = min(max(bad_share, 0.0), 1.0)
    unsatisfied = 1.0 - target
    good = unsatisfied / (1.0 - share + share * BAD_EXPERIENCE_RATIO)
    bad = min(1.0, good * BAD_EXPERIENCE_RATIO)
    return (1.0 - good, 1.0 - bad)


def answer(rng: random.Random, satisfied_p: float, three_point_share: float) -> dict[str, object]:
    """The `data` of a `survey.submitted` event, without `channel`."""
    satisfied = rng.random() < satisfied_p
    if rng.random() < three_point_share:
        scale = 3
        score = 3 if satisfied else (2 if rng.random() < 0.6 else 1)
    else:
        scale = 5
        if satisfied:
            score = 5 if rng.random() < 0.72 else 4
        else:
            draw = rng.random()
            score = 3 if draw < 0.5 else (2 if draw < 0.75 else 1)
    data: dict[str, object] = {"score": score, "scale": scale}
    if rng.random() < COMMENT_SHARE:
        data["comment"] = rng.choice(_COMMENTS_GOOD if satisfied else _COMMENTS_BAD)
    return data
