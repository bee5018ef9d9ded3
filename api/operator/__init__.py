"""The operators' console at ``/operator``: review, annotate, train, evaluate, activate."""
