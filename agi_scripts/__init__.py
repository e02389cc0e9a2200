"""The Asterisk channel (FastAGI and AGI with pyst2) arrives with the Asterisk issue."""
