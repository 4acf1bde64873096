"""The texts the bench scripts time, kept in one place so that their numbers stay comparable."""

REVIEW = (
    "I went in expecting very little, and for the first half hour the film gave me exactly that: a thin plot, "
    "stiff dialogue and a score that never stopped telling me what to feel. Then something changed. The two "
    "leads found a rhythm, the jokes started to land, and the quiet scenes in the kitchen were some of the "
    "most honest moments I have seen in a comedy this year. It is not a great movie, and the ending is rushed, "
    "but the acting saved it, and I would happily watch it again with friends. "
)
