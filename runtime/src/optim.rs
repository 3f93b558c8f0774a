//! Optimizers (SGD with momentum, Adam) and learning-rate schedules.
