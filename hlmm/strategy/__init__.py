"""Strategy: fair price, GLFT spreads, capped ladder, BBO/staleness guard, reference-feed signal (pure code).

Import from the submodules (``hlmm.strategy.ladder``, ``.reference``, ``.fair``, ``.glft``): this package
module stays import-free because ``hlmm.config`` imports ``hlmm.strategy.params`` and must not pull in the
rest of the strategy (nor risk an import cycle through ``hlmm.estimators``).
"""
