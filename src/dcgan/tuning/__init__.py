"""``dcgan tune``: one Optuna study per loss, every loss with the same trial budget.

:mod:`.space` reads and checks the search-space file, :mod:`.trial` trains and scores one
trial with the fixed-budget protocol of :mod:`dcgan.halves`, :mod:`.study` runs the studies
in Optuna's database storage (one worker or many), :mod:`.report` writes the tuned params,
the figures and the DVC command. MLflow logging lives in :mod:`dcgan.tracking.study`.
"""
