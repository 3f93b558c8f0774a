//! Dataset loaders and augmentation.
