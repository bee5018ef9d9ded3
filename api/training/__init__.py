"""Training jobs: validate the reviewed data, train a candidate, score it against the active one."""
