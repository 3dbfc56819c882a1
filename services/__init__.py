"""Domain services: plain Python, no Flask request objects; the acting operator is a parameter."""
