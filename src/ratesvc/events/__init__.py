"""Events: fast, lossless ingestion and exact counts."""
