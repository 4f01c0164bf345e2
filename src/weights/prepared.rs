//! Tensors already on the device, by name: what streaming a weights file produces, and what a
//! model's builder then takes its tensors from.

use std::collections::BTreeMap;

use burn::tensor::Device;

use super::{check_leftovers, DeviceWeight, WeightError, WeightSource};

/// The device tensors of one weights file, ready for a model's builder. The builder takes each
/// tensor out of the map (no copy); tensors left at the end are an error. Dropping the map
/// releases whatever the builder did not take, so a failed build leaves nothing behind.
pub struct PreparedWeights {
    file: String,
    device: Device,
    /// Each weight with the shape its file stores (what builders ask for).
    tensors: BTreeMap<String, (Vec<usize>, DeviceWeight)>,
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

    /// Adds a weight, uploaded from a tensor the file stores with shape `file_shape`.
    pub fn insert(&mut self, name: &str, file_shape: &[usize], weight: DeviceWeight) {
        self.tensors
            .insert(name.to_string(), (file_shape.to_vec(), weight));
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
        self.tensors.values().map(|(_, w)| w.device_bytes()).sum()
    }
}

impl WeightSource for PreparedWeights {
    fn device(&self) -> &Device {
        &self.device
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name) || self.taken.contains(name)
    }

    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<DeviceWeight, WeightError> {
        let (found, weight) = self
            .tensors
            .remove(name)
            .ok_or_else(|| WeightError::Missing {
                file: self.file.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
            })?;
        if found != shape {
            return Err(WeightError::Shape {
                file: self.file.clone(),
                name: name.to_string(),
                found,
                expected: shape.to_vec(),
            });
        }
        self.taken.insert(name.to_string());
        Ok(weight)
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
