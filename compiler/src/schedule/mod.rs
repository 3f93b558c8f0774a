//! Schedule order, liveness and the memory planner.
