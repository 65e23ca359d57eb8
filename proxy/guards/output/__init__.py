"""Output guards: one anomaly score per answer from explained signals.

``score`` is the response guard; it opens one scanner per output channel made of the
signal modules (``canary``, ``leakage``, ``exfil``, ``injection_echo``, ``drift``,
``pii_signal``), each of which turns text into ``verdicts.Hit``s. ``canary`` is also a request guard
(it plants the token) and a stand-alone response guard (it strips the token).
"""
