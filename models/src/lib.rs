//! Models compiled at build time by `include_model!`.
//!
//! - [`SeedNet`]: the seed's CIFAR-10 network, MobileNet v1 α = 1.0 on 32×32×3 inputs with 10
//!   classes (weights from the constructor's seed 0; train it and export to get real ones);
//! - [`MobileNet224`]: MobileNet v1 1.0-224, 1000 classes (4.2 M parameters).
//!
//! Both take NCHW input (`[1, 3, R, R]`) and return softmax probabilities.

mobilenetc_macros::include_model!(SeedNet, mobilenet_v1(alpha = 1.0, resolution = 32, classes = 10));

mobilenetc_macros::include_model!(MobileNet224, mobilenet_v1(alpha = 1.0, resolution = 224, classes = 1000));
