"""Pure loss functions, one per file: tensors in, scalar out, no modules, no state."""
