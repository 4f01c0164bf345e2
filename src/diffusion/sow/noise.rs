//! Where a run's random draws come from: the one seeded generator, or a list of tensors given
//! explicitly (`sow generate --noise`), consumed in the binding order of docs/method.md §2.10a.

use burn::tensor::{Device, Tensor, TensorData};

use crate::rng::NoiseGenerator;

/// What a draw is for, in words (for error messages and the draw log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrawPurpose {
    /// The posterior noise of condition `i`'s crop.
    CropPosterior(usize),
    /// The posterior noise of the canvas.
    CanvasPosterior,
    /// The jump noise at the start of cycle `n` (1-based).
    Jump(usize),
    /// The DDIM noise of cycle `n`'s step from state `k`.
    CycleStep(usize, usize),
    /// The DDIM noise of the final stage's step from state `k`.
    FinalStep(usize),
}

impl std::fmt::Display for DrawPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrawPurpose::CropPosterior(i) => write!(f, "the posterior noise of condition {i}"),
            DrawPurpose::CanvasPosterior => write!(f, "the posterior noise of the canvas"),
            DrawPurpose::Jump(n) => write!(f, "the jump noise of cycle {n}"),
            DrawPurpose::CycleStep(n, k) => {
                write!(f, "the DDIM noise of cycle {n}, step from state {k}")
            }
            DrawPurpose::FinalStep(k) => {
                write!(f, "the DDIM noise of the final step from state {k}")
            }
        }
    }
}

/// A draw that cannot be served from a given list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoiseError {
    /// The list ends before the run does.
    #[error("the noise file has no tensor noise.{index} for {purpose} (shape {shape:?})")]
    Missing {
        /// Index in the draw order.
        index: usize,
        /// What it was for.
        purpose: String,
        /// The shape needed.
        shape: Vec<usize>,
    },
    /// A tensor of the wrong shape.
    #[error("noise.{index} ({purpose}) has shape {found:?}, but the run needs {expected:?}")]
    Shape {
        /// Index in the draw order.
        index: usize,
        /// What it was for.
        purpose: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape needed.
        expected: Vec<usize>,
    },
    /// The run ended with draws left over.
    #[error("the noise file has {count} tensor(s) the run never used, from noise.{first}: it was made for other parameters")]
    Leftover {
        /// First unused index.
        first: usize,
        /// How many are unused.
        count: usize,
    },
}

/// The run's source of standard-normal draws.
pub enum NoiseSource {
    /// The seeded generator (docs/method.md §6).
    Seeded(NoiseGenerator),
    /// Tensors given in draw order: (shape, values) each.
    Given(Vec<(Vec<usize>, Vec<f32>)>),
}

/// Serves draws in order and remembers how many were taken.
pub struct Draws {
    source: NoiseSource,
    taken: usize,
}

impl Draws {
    /// Draws from a source.
    pub fn new(source: NoiseSource) -> Self {
        Draws { source, taken: 0 }
    }

    /// Draws from the seeded generator.
    pub fn seeded(seed: u64) -> Self {
        Draws::new(NoiseSource::Seeded(NoiseGenerator::new(seed)))
    }

    /// The next draw, a standard-normal tensor of `shape` on `device`.
    pub fn next(
        &mut self,
        shape: [usize; 4],
        purpose: DrawPurpose,
        device: &Device,
    ) -> Result<Tensor<4>, NoiseError> {
        let index = self.taken;
        let values = match &mut self.source {
            NoiseSource::Seeded(rng) => rng.normals(shape.iter().product()),
            NoiseSource::Given(list) => {
                let (found, values) = list.get(index).ok_or_else(|| NoiseError::Missing {
                    index,
                    purpose: purpose.to_string(),
                    shape: shape.to_vec(),
                })?;
                if found.as_slice() != shape {
                    return Err(NoiseError::Shape {
                        index,
                        purpose: purpose.to_string(),
                        found: found.clone(),
                        expected: shape.to_vec(),
                    });
                }
                values.clone()
            }
        };
        self.taken += 1;
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    }

    /// How many draws were taken.
    pub fn taken(&self) -> usize {
        self.taken
    }

    /// Ends a run: a given list must have been used up exactly.
    pub fn finish(&self) -> Result<(), NoiseError> {
        match &self.source {
            NoiseSource::Given(list) if list.len() > self.taken => Err(NoiseError::Leftover {
                first: self.taken,
                count: list.len() - self.taken,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_draws_are_checked_in_order() {
        let device = Device::flex();
        let list = vec![
            (vec![1, 4, 2, 2], vec![0.5; 16]),
            (vec![1, 4, 3, 3], vec![0.0; 36]),
        ];
        let mut draws = Draws::new(NoiseSource::Given(list));
        let first = draws
            .next([1, 4, 2, 2], DrawPurpose::CanvasPosterior, &device)
            .unwrap();
        assert_eq!(
            first.into_data().try_to_vec::<f32>().unwrap(),
            vec![0.5; 16]
        );
        let err = draws
            .next([1, 4, 2, 2], DrawPurpose::Jump(1), &device)
            .unwrap_err();
        assert!(matches!(err, NoiseError::Shape { index: 1, .. }), "{err}");
        assert!(err.to_string().contains("jump noise of cycle 1"));
        assert!(matches!(
            draws.finish(),
            Err(NoiseError::Leftover { first: 1, count: 1 })
        ));
        let mut short = Draws::new(NoiseSource::Given(vec![]));
        assert!(matches!(
            short.next([1, 4, 2, 2], DrawPurpose::FinalStep(3), &device),
            Err(NoiseError::Missing { index: 0, .. })
        ));
    }

    #[test]
    fn seeded_draws_follow_the_generator() {
        let device = Device::flex();
        let mut draws = Draws::seeded(7);
        let a = draws
            .next([1, 4, 2, 2], DrawPurpose::CanvasPosterior, &device)
            .unwrap();
        let expected = NoiseGenerator::new(7).normals(16);
        assert_eq!(a.into_data().try_to_vec::<f32>().unwrap(), expected);
        assert_eq!(draws.taken(), 1);
        draws.finish().unwrap();
    }
}
