"""Thin Hydra entry points, one per console command. Nothing else imports this package."""
