//! The default model, compiled into the binary so `tern run` works with no download:
//! Andrej Karpathy's stories260K (MIT), a 260K-parameter Llama trained on TinyStories, in Q8_0.
//! See `models/README.md` for its origin.

/// The bundled model's GGUF bytes.
pub const STORIES260K_Q8_0: &[u8] = include_bytes!("../../models/stories260K-q8_0.gguf");

/// How the bundled model is named in messages.
pub const NAME: &str = "stories260K-q8_0 (bundled)";
