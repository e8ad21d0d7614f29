"""Derived indexes: lexical (BM25, tantivy) and vectors (exact / HNSW), rebuilt from the store."""
