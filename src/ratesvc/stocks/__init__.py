"""Stock bars: a caching proxy in front of Polygon.io aggregates."""
