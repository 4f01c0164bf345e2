//! Checking a weights file against a model before its body is read: the model's own builder
//! runs against the file's header alone.
//!
//! Asking the builder itself (rather than a list of names kept elsewhere) means the check can
//! never disagree with the load that follows: the same names, the same shapes, the same
//! choice between naming variants (`contains`). Tensors handed to the builder are views of a
//! single zero broadcast to the requested shape, so nothing of the model's size is allocated.
//! The builders only store and transpose what they load, which views support.

use std::collections::BTreeSet;

use burn::tensor::{Device, Tensor};

use super::{check_entry, check_leftovers, SafetensorsHeader, WeightError, WeightSource};

/// A [`WeightSource`] over a header: every request is checked (present, right shape, a float
/// dtype) and recorded; [`WeightSource::finish`] rejects tensors the model does not use.
pub struct HeaderCheck<'h> {
    header: &'h SafetensorsHeader,
    device: Device,
    zero: Tensor<1>,
    requested: BTreeSet<String>,
}

impl<'h> HeaderCheck<'h> {
    /// A check of `header`; placeholder views live on `device` (a few bytes).
    pub fn new(header: &'h SafetensorsHeader, device: &Device) -> Self {
        HeaderCheck {
            header,
            device: device.clone(),
            zero: Tensor::zeros([1], device),
            requested: BTreeSet::new(),
        }
    }

    /// The names the model asked for: the tensors a load must read, and the only ones.
    pub fn into_requested(self) -> BTreeSet<String> {
        self.requested
    }
}

impl WeightSource for HeaderCheck<'_> {
    fn device(&self) -> &Device {
        &self.device
    }

    fn contains(&self, name: &str) -> bool {
        self.header.tensors.contains_key(name)
    }

    fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Tensor<D>, WeightError> {
        check_entry(self.header, name, &shape)?;
        self.requested.insert(name.to_string());
        Ok(self.zero.clone().reshape([1; D]).expand(shape))
    }

    fn finish(&mut self, ignorable_suffixes: &[&str]) -> Result<(), WeightError> {
        check_leftovers(
            &self.header.file,
            self.header.tensors.keys(),
            &self.requested,
            ignorable_suffixes,
        )
    }
}
