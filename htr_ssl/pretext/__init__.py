"""Self-supervised pretext tasks that train a text-line encoder on unlabeled images.

One module per method family; `registry.PRETEXTS` names them; `model.PretextModel` combines
one or more on a shared encoder; pure loss functions live in `losses/`.
"""
