"""Audio the hotline keeps: complaint messages, call recordings, rendered prompts."""
