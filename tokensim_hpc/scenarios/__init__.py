"""Built-in scenarios, one TOML file each; the first line is its description."""
