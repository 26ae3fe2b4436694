"""Models: initial state and step of each built-in model, on a partitioned domain."""
