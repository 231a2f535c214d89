"""How models learn: one loop for every stage, checkpoints, distributed set-up."""
