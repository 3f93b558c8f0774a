//! Shared by the export tests: a network fine-tuned for a few steps, so that its weights and
//! BatchNorm running statistics are trained values, not the constructor's or the file's.

#![allow(dead_code)]

use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::graph::Graph;
use mobilenetc::runtime::data::{Dataset, ImageShape, Loader, LoaderConfig, Split};
use mobilenetc::runtime::optim::{Adam, AdamConfig, LrSchedule};
use mobilenetc::train::{TrainConfig, Trainer};

/// MobileNet v1 α 0.25 on 32×32×3 with 10 classes: 27 convs, 27 BatchNorms, small enough to
/// train a few steps in a debug build.
pub fn small_mobilenet() -> Graph {
    mobilenet_v1(&MobileNetConfig { alpha: 0.25, resolution: 32, classes: 10, ..MobileNetConfig::default() }).unwrap()
}

/// Trains `graph` for `steps` Adam steps on batches of 16 Fashion-MNIST sample images
/// (resized to the model's input); returns the trainer and its optimizer.
pub fn fine_tune_with(graph: &Graph, steps: usize) -> (Trainer, Adam) {
    let mut t = Trainer::new(graph, TrainConfig { batch: 16, threads: 2 }).unwrap();
    let [c, h, w] = t.image_shape();
    let data = Dataset::fashion_mnist_sample(Split::Train).unwrap();
    let loader = Loader::new(&data, LoaderConfig::train(ImageShape::new(c, h, w), 16).with_seed(3)).unwrap();
    let mut opt = Adam::new(AdamConfig::pytorch(), LrSchedule::constant(1e-3)).unwrap();
    let ep = loader.epoch(0);
    for b in 0..steps {
        let batch = ep.batch(b);
        t.train_step(&batch.images, &batch.labels, &mut opt).unwrap();
    }
    (t, opt)
}

pub fn fine_tune(graph: &Graph, steps: usize) -> Trainer {
    fine_tune_with(graph, steps).0
}

/// Asserts that training moved every parameter and running statistic of `source`.
pub fn assert_all_moved(source: &Graph, trainer: &Trainer) {
    let params = trainer.parameters();
    let still: Vec<&str> = params
        .iter()
        .filter(|(n, t)| {
            let id = source.tensors.iter().position(|x| &x.name == n).unwrap();
            source.constants[&id].data == t.data
        })
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(still.is_empty(), "training left these at their initial values: {still:?}");
}
