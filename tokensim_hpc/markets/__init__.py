"""Markets of the tokenized economy: chains, AMM pools and bridges (replicated, local)."""
