//! Model architectures: their hyperparameters and weights. The plan (`crate::plan`) turns a
//! configuration into the ops of one step.

pub mod config;
pub mod weights;

pub use config::{Arch, ConfigError, ModelConfig, RopeStyle};
pub use weights::{
    LayerStore, LayerTensor, LayerWeights, LoadError, Model, WeightId, WeightRole, WeightView,
};
