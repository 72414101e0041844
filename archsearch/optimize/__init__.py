"""``archsearch optimize``: the study loop (search), the trial records (records), where it meets
Optuna (study, sampler, tpe), the one decision at the end (decide), what it tells (conclude, report)
and the command (cli)."""
