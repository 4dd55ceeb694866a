"""Small shared helpers: argument validation and atomic file writes."""
