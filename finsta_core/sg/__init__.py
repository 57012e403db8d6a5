"""Scene-graph construction (paper section 3): TSG parsing, DSG building, HSG linking, noise tools."""
