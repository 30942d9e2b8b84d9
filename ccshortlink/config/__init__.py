"""Reading the TOML config and the agents YAML into frozen records, every problem at once."""
