"""Game days: a runbook played against the stack with people in the loop.

    from chaos.gameday.plan import load_plan
    from chaos.gameday.run import run

    gp = load_plan("experiments/gameday_hot_mic.yaml", state)   # validated and planned
    print(gp.describe())                                         # the dry run
    result = run(gp, state, "reports", auto=True)                # journal, report.html

Modules: ``runbook`` (the file's model, read by ``chaos.core.yamlfile`` with line numbers), ``plan``
(the framework's declarations, planned against the target), ``player`` (the headless
core: steps, people's commands, the board's view), ``run`` (one run, its journal),
``board`` (the Textual board), ``cli`` (``chaos gameday``). Nothing here is imported by
``import chaos``; pydantic and textual load only when a game day is used.
"""
