//! What every device (GPU) backend shares, so each says it once: the exchange buffer of a
//! step and the plan's ops resolved to words ([`io`]), the matmul weight layout and the
//! f32 copies of formats without a kernel ([`weights`]), the shape rules of the cache ops
//! ([`shapes`]), the step buffers' sizes ([`sizes`]), and which device a load takes
//! ([`choice`]).

pub mod choice;
pub mod io;
pub mod shapes;
pub mod sizes;
pub mod weights;

pub use choice::{Candidate, DeviceChoice, NoChoice};
pub use io::{DeviceOp, StepIo, Words, rope_table, scores_len};
pub use shapes::{AttentionShape, KvShape};
pub use sizes::{Grown, StepSizes};
pub use weights::ROW_GROUP;
