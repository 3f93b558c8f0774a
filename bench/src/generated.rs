//! The generated code of the benchmarked models (written by `build.rs` with mobilenetc's code
//! generator, exactly what `mobilenetc build` / `include_model!` emit), behind one interface.

macro_rules! models {
    ($($file:literal => $ty:ident),* $(,)?) => {
        $(include!(concat!(env!("OUT_DIR"), "/", $file, ".rs"));)*

        /// One of the generated models.
        pub enum Generated {
            $($ty(Box<$ty>),)*
        }

        impl Generated {
            /// Runs one image (NCHW) and returns the softmax output.
            pub fn infer(&mut self, x: &[f32]) -> &[f32] {
                match self {
                    $(Generated::$ty(m) => m.try_infer(x).expect("input length"),)*
                }
            }

            pub fn set_threads(&mut self, t: usize) {
                match self {
                    $(Generated::$ty(m) => m.set_threads(t),)*
                }
            }
        }
    };
}

models! {
    "mobilenet_1_0_224" => Mobilenet10,
    "mobilenet_0_5_224" => Mobilenet05,
    "mobilenet_0_25_224" => Mobilenet025,
    "mobilenet_seed" => MobilenetSeed,
}

/// `1.0-224`, `0.5-224`, `0.25-224` or `seed`: the generated model and its ONNX file's bytes.
pub fn load(model: &str) -> Option<(Generated, &'static [u8])> {
    macro_rules! onnx {
        ($f:literal) => {
            include_bytes!(concat!(env!("OUT_DIR"), "/", $f, ".onnx")) as &'static [u8]
        };
    }
    Some(match model {
        "1.0-224" => (Generated::Mobilenet10(Box::new(Mobilenet10::new())), onnx!("mobilenet_1_0_224")),
        "0.5-224" => (Generated::Mobilenet05(Box::new(Mobilenet05::new())), onnx!("mobilenet_0_5_224")),
        "0.25-224" => (Generated::Mobilenet025(Box::new(Mobilenet025::new())), onnx!("mobilenet_0_25_224")),
        "seed" => (Generated::MobilenetSeed(Box::new(MobilenetSeed::new())), onnx!("mobilenet_seed")),
        _ => return None,
    })
}

/// The resolution of a model name.
pub fn resolution(model: &str) -> usize {
    if model == "seed" {
        32
    } else {
        224
    }
}
