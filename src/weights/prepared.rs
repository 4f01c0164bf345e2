//! Tensors already on the device, by name: what streaming a weights file produces, and what a
//! model's builder then takes its tensors from.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor};

use super::{check_leftovers, DeviceTensor, WeightError, WeightSource};

/// The device tensors of one weights file, ready for a model's builder. The builder takes each
/// tensor out of the map (no copy); tensors left at the end are an error. Dropping the map
/// releases whatever the builder did not take, so a failed build leaves nothing behind.
pub struct PreparedWeights {
    file: String,
    device: Device,
    tensors: BTreeMap<String, DeviceTensor>,
    taken: std::collections::BTreeSet<String>,
}

impl PreparedWeights {
    /// An empty map for the file labelled `file`, on `device`.
    pub fn new(file: &str, device: &Device) -> Self {
        PreparedWeights {
            file: file.to_string(),
            device: device.clone(),
            tensors: BTreeMap::new(),
            taken: Default::default(),
        }
    }

    /// The file label errors name.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Adds a tensor.
    pub fn insert(&mut self, name: &str, tensor: DeviceTensor) {
        self.tensors.insert(name.to_string(), tensor);
    }

    /// Whether a tensor of this name is ready.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Number of tensors ready.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether no tensor is ready.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Bytes the ready tensors take on the device.
    pub fn device_bytes(&self) -> usize {
        self.tensors.values().map(DeviceTensor::device_bytes).sum()
    }
}

impl WeightSource for PreparedWeights {
    fn device(&self) -> &Device {
        &self.device
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name) || self.taken.contains(name)
    }

    fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Tensor<D>, WeightError> {
        let tensor = self
            .tensors
            .remove(name)
            .ok_or_else(|| WeightError::Missing {
                file: self.file.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
            })?;
        let found = tensor.shape();
        if found != shape {
            return Err(WeightError::Shape {
                file: self.file.clone(),
                name: name.to_string(),
                found,
                expected: shape.to_vec(),
            });
        }
        self.taken.insert(name.to_string());
        Ok(tensor.into_tensor(shape))
    }

    fn finish(&mut self, ignorable_suffixes: &[&str]) -> Result<(), WeightError> {
        check_leftovers(
            &self.file,
            self.tensors.keys(),
            &self.taken,
            ignorable_suffixes,
        )
    }
}
