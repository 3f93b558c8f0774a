//! Graph passes: each a small function that rewrites the graph.
