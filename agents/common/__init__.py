"""The machinery every agent shares; it never imports an algorithm.

budget        TrackedEnv: the budget of trainings, the history, replay on resume, prefetch to a pool
edits         one-layer edits: the neighbourhood (local search) and the mutation (evolution, BANANAS)
history       HistoryRow / History: one row per step, mirrored to a JSON-lines file
ledger        SearchLedger: a search's trainings in the store's ledger, which are pending a step
replay_tree   the tree of architectures a search visited (REINFORCE replays from it; runs draw it)
sampling      episodes and architectures drawn uniformly among the allowed actions
sb3           Stable-Baselines3 plumbing: the budget as the stop, SubprocVecEnv copies counted
runs          a search's run folder: spec, outputs, resume
"""
