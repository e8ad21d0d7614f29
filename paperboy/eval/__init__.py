"""Built-in evaluation: BEIR retrieval metrics (and, later, recommendations)."""
