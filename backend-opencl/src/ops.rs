//! The ops of a transformer step as OpenCL kernels, with the semantics of core's reference
//! backend, which the tests compare them against.

use crate::error::ClError;
use crate::gpu::{Buffer, Gpu, Kernel, Program};

/// The element-wise kernels' source.
const ELEMENTWISE: &str = include_str!("../kernels/elementwise.cl");

/// Work-items per work-group of the element-wise kernels.
const GROUP: usize = 64;

/// The element-wise kernels, built once for a device.
pub struct Elementwise {
    _program: Program,
    add: Kernel,
}

impl Elementwise {
    /// Builds the element-wise kernels for `gpu`.
    pub fn build(gpu: &Gpu) -> Result<Elementwise, ClError> {
        let program = gpu.program("elementwise.cl", ELEMENTWISE, "-cl-std=CL1.2")?;
        Ok(Elementwise {
            add: program.kernel("add")?,
            _program: program,
        })
    }

    /// Enqueues `x[i] += y[i]` for the first `n` floats of each buffer, as core's
    /// `reference::add`.
    pub fn add(&self, gpu: &Gpu, x: &Buffer, y: &Buffer, n: usize) -> Result<(), ClError> {
        let bytes = n
            .checked_mul(4)
            .filter(|&b| b <= x.bytes() && b <= y.bytes());
        let n32 = u32::try_from(n).ok().filter(|_| bytes.is_some());
        let Some(n32) = n32 else {
            return Err(ClError::Shape {
                op: "add",
                why: format!(
                    "{n} floats in buffers of {} and {} bytes",
                    x.bytes(),
                    y.bytes()
                ),
            });
        };
        self.add.arg_buffer(0, x)?;
        self.add.arg_buffer(1, y)?;
        self.add.arg_u32(2, n32)?;
        gpu.run(&self.add, n.next_multiple_of(GROUP).max(GROUP), Some(GROUP))
    }
}
