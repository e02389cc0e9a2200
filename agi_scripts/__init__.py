"""The Asterisk channel: FastAGI (and plain AGI) with pyst2, each entry collected by one Read in Asterisk."""
