//! The self-attention hook on the tiny UNet (flex backend): it sees every self-attention layer
//! once per evaluation with the right layer index, grid and heads; a hook that changes nothing
//! gives exactly the unhooked numbers; a hook that changes the logits changes the output.
#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::ops::Range;

use burn::tensor::{Device, Distribution, Tensor};
use sow_studio::compare::relative_l2;
use sow_studio::model::config::UNetConfig;
use sow_studio::model::hook::{AttentionHook, Entries, LayerInfo, LogitsFn, Observed};
use sow_studio::model::unet::UNet;
use sow_studio::weights::{MemorySource, TensorLoader};

const CONFIG: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny-sd2/unet/config.json"
));
const WEIGHTS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny-sd2/unet/diffusion_pytorch_model.safetensors"
));

fn tiny_unet(device: &Device) -> UNet {
    let config = UNetConfig::from_json("unet/config.json", CONFIG).unwrap();
    let mut loader = TensorLoader::open("unet", MemorySource(WEIGHTS), device).unwrap();
    UNet::load(&config, &mut loader).unwrap()
}

/// Records what it is told and, if `bias` is set, adds it to every logit towards key 0.
#[derive(Default)]
struct Recorder {
    observed: RefCell<Vec<(usize, [usize; 2], usize, Vec<usize>)>>,
    modified_rows: RefCell<Vec<(usize, Range<usize>)>>,
    bias: Option<f32>,
}

impl AttentionHook for Recorder {
    fn observe(&self, layer: &LayerInfo, logits: &LogitsFn) -> Option<Observed> {
        // Ask for the first query row only: the hook decides what it pays for. One batch
        // entry costs one entry's matmul.
        let dims = logits(Entries::All, 0..1).dims().to_vec();
        let one = logits(Entries::One(1), 0..2).dims().to_vec();
        assert_eq!(one, vec![1, layer.heads, 2, layer.tokens()]);
        assert_eq!(layer.batch, 2);
        self.observed
            .borrow_mut()
            .push((layer.layer, layer.grid, layer.heads, dims));
        // What observe computes reaches modify.
        Some(Box::new(layer.layer))
    }

    fn modify(
        &self,
        layer: &LayerInfo,
        observed: Option<&Observed>,
        rows: Range<usize>,
        logits: Tensor<4>,
    ) -> Tensor<4> {
        let from_observe = observed.and_then(|o| o.downcast_ref::<usize>());
        assert_eq!(from_observe, Some(&layer.layer));
        self.modified_rows.borrow_mut().push((layer.layer, rows));
        match self.bias {
            None => logits,
            Some(bias) => {
                let [b, h, r, k] = logits.dims();
                let mut column = vec![0.0f32; k];
                column[0] = bias;
                let add = Tensor::<1>::from_floats(column.as_slice(), &logits.device())
                    .reshape([1, 1, 1, k])
                    .expand([b, h, r, k]);
                logits + add
            }
        }
    }
}

#[test]
fn the_hook_sees_every_self_attention_layer_and_a_no_op_hook_changes_nothing() {
    let device = Device::flex();
    let unet = tiny_unet(&device);
    let sample = Tensor::<4>::random([2, 4, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    let context = Tensor::<3>::random([2, 77, 32], Distribution::Normal(0.0, 1.0), &device);
    let plain = unet.forward(sample.clone(), 501.0, context.clone());

    let recorder = Recorder::default();
    let hooked = unet.forward_hooked(sample.clone(), 501.0, context.clone(), Some(&recorder));
    let a = plain.into_data().try_to_vec::<f32>().unwrap();
    let b = hooked.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(
        relative_l2(&b, &a),
        0.0,
        "a hook that changes nothing changed the output"
    );

    let observed = recorder.observed.borrow();
    let layers: Vec<usize> = observed.iter().map(|o| o.0).collect();
    assert_eq!(layers, (0..16).collect::<Vec<_>>());
    let sides: Vec<usize> = observed.iter().map(|o| o.1[0]).collect();
    assert_eq!(sides, [16, 16, 8, 8, 4, 4, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16]);
    let heads: Vec<usize> = observed.iter().map(|o| o.2).collect();
    assert_eq!(heads, [2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 2]);
    for (_, grid, heads, dims) in observed.iter() {
        assert_eq!(
            dims,
            &vec![2, *heads, 1, grid[0] * grid[1]],
            "observed logits shape"
        );
    }
    // Every query row of every layer went through `modify` exactly once.
    let modified = recorder.modified_rows.borrow();
    for (layer, grid, _, _) in observed.iter() {
        let rows: usize = modified
            .iter()
            .filter(|(l, _)| l == layer)
            .map(|(_, r)| r.len())
            .sum();
        assert_eq!(rows, grid[0] * grid[1], "layer {layer}");
    }

    let biased = Recorder {
        bias: Some(5.0),
        ..Recorder::default()
    };
    let changed = unet.forward_hooked(sample, 501.0, context, Some(&biased));
    let c = changed.into_data().try_to_vec::<f32>().unwrap();
    assert!(
        relative_l2(&c, &a) > 1e-3,
        "a hook that changes the logits must change the output"
    );
}
