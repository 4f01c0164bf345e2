//! The toy experiment's async driver (docs/method.md §4.1): steps a [`ToyRun`], reads each
//! finished row of images and measures back, and tells an observer after every step so that a
//! page can fill its grid and plot as the rows arrive.

use super::generate::{encode_prompts, Flow};
use super::Models;
use crate::diffusion::sow::RunOptions;
use crate::diffusion::toy::report::ToyRow;
use crate::diffusion::toy::{ToyError, ToyOptions, ToyRun, ToyStage};
use crate::model::clip::EncodeError;

/// One decoded image of the experiment, on the host.
#[derive(Clone, Debug)]
pub struct ToyImage {
    /// Its measures and place in the grid.
    pub row: ToyRow,
    /// Interleaved RGB, `size × size`.
    pub rgb: Vec<u8>,
    /// Side in pixels.
    pub size: usize,
}

/// What the observer sees after each step.
pub struct ToyStepReport<'a> {
    /// What comes next, in words.
    pub description: String,
    /// UNet evaluations done.
    pub unet_calls: usize,
    /// UNet evaluations in all.
    pub unet_total: usize,
    /// The images this step finished (one per layout), if it decoded a row.
    pub images: &'a [ToyImage],
}

/// Watches the experiment between steps.
#[allow(async_fn_in_trait)]
pub trait ToyObserver {
    /// Called after every step.
    async fn step(&mut self, report: ToyStepReport<'_>) -> Flow;
}

/// Anything that stops the experiment.
#[derive(Debug, thiserror::Error)]
pub enum ToyRunError {
    /// Bad options.
    #[error(transparent)]
    Options(#[from] ToyError),
    /// The empty prompt could not be encoded.
    #[error("encoding the empty prompt failed: {0}")]
    Encode(#[from] EncodeError),
    /// The observer stopped it.
    #[error("cancelled after {0} UNet evaluations")]
    Cancelled(usize),
    /// A readback failed.
    #[error("reading the images back failed: {0}")]
    Readback(String),
}

/// Runs the toy experiment to the end and returns every image with its measures.
pub async fn run_toy<O: ToyObserver>(
    models: &Models,
    options: &ToyOptions,
    observer: &mut O,
) -> Result<Vec<ToyImage>, ToyRunError> {
    let prompts = encode_prompts(models, "", &RunOptions::preset(Default::default())).await?;
    let mut run = ToyRun::new(
        &models.unet,
        &models.vae,
        &models.scheduler,
        options.clone(),
        prompts.empty,
    )?;
    let mut all = Vec::new();
    while !run.is_done() {
        let progress = run.step().await;
        crate::pace::settle(run.latest()).await;
        let mut images = Vec::new();
        if let Some(frame) = progress.frame {
            let read = |e: String| ToyRunError::Readback(e);
            let halves = read_floats(frame.halves_difference).await.map_err(read)?;
            let bright = read_floats(frame.upper_right_brightness)
                .await
                .map_err(read)?;
            let size = options.canvas;
            let rgbs = crate::imaging::tensor_to_rgb(frame.images)
                .await
                .map_err(ToyRunError::Readback)?;
            for (i, rgb) in rgbs.into_iter().enumerate() {
                images.push(ToyImage {
                    row: ToyRow {
                        variant: frame.variant,
                        layout: options.layouts[i],
                        merge_state: frame.merge_state,
                        halves_difference: halves[i],
                        upper_right_brightness: bright[i],
                    },
                    rgb,
                    size,
                });
            }
        }
        let report = ToyStepReport {
            description: describe(run.stage(), options),
            unet_calls: progress.unet_calls,
            unet_total: progress.unet_total,
            images: &images,
        };
        if observer.step(report).await == Flow::Cancel && !run.is_done() {
            return Err(ToyRunError::Cancelled(progress.unet_calls));
        }
        all.extend(images);
    }
    Ok(all)
}

fn describe(stage: ToyStage, options: &ToyOptions) -> String {
    let name = |v: usize| options.variants[v].name();
    match stage {
        ToyStage::Encode => "encoding the white and the gray image".into(),
        ToyStage::Invert(k) => format!(
            "inverting both images: state {} of {}",
            k + 1,
            options.steps
        ),
        ToyStage::Denoise { variant, merge, at } => {
            format!(
                "{}: merged at state {merge}, denoising from state {at}",
                name(variant)
            )
        }
        ToyStage::Decode { variant, merge } => {
            format!("{}: decoding the merge at state {merge}", name(variant))
        }
        ToyStage::Done => "done".into(),
    }
}

async fn read_floats(t: burn::tensor::Tensor<1>) -> Result<Vec<f32>, String> {
    t.into_data_async()
        .await
        .map_err(|e| format!("{e:?}"))?
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}
