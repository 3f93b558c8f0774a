//! Kernels: one implementation per op, shared by generated code and the schedule executor.
