"""seqdemo: see how LSTM sequence models work.

    from seqdemo import load
    clf = load("sentiment"); clf.predict(["I loved it"])
    lm = load("nextword");   lm.next_words("The acting was", k=5)
"""

from seqdemo.inference.hub import load

__all__ = ["load"]
