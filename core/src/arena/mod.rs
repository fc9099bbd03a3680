//! Step memory without allocation: plan offsets once, then hand out views of one buffer.
//!
//! A plan knows, for every intermediate tensor of a step, its size and the ops that first
//! and last touch it. [`plan_offsets`] turns those lifetimes into byte offsets so that
//! tensors alive at the same time never share bytes and tensors that are not do; the
//! total is the one buffer a step needs. [`Arena`] then lends disjoint f32 views of that
//! buffer at the planned [`Span`]s, so a decode step allocates nothing.

mod buffer;
mod plan;

pub use buffer::{Arena, Span};
pub use plan::{Lifetime, plan_offsets};

use core::fmt;

/// Why offsets could not be planned or a view could not be lent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArenaError {
    /// `plan_offsets` needs one offset slot per lifetime.
    LengthMismatch { lifetimes: usize, offsets: usize },
    /// Alignment must be a power of two.
    BadAlign { align: usize },
    /// A lifetime that ends before it starts.
    BadLifetime {
        index: usize,
        first_use: usize,
        last_use: usize,
    },
    /// Sizes or offsets overflow `usize`.
    Overflow,
    /// A span whose byte offset is not a multiple of 4.
    Misaligned { offset: usize },
    /// A span reaching `end` bytes into an arena of `capacity` bytes.
    OutOfBounds { end: usize, capacity: usize },
    /// Spans `first` and `second` (indices into the request) share bytes.
    Overlap { first: usize, second: usize },
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArenaError::LengthMismatch { lifetimes, offsets } => {
                write!(f, "{lifetimes} lifetimes but {offsets} offset slots")
            }
            ArenaError::BadAlign { align } => {
                write!(f, "alignment {align} is not a power of two")
            }
            ArenaError::BadLifetime {
                index,
                first_use,
                last_use,
            } => write!(
                f,
                "tensor {index}: last use {last_use} before first use {first_use}"
            ),
            ArenaError::Overflow => f.write_str("arena size arithmetic overflows usize"),
            ArenaError::Misaligned { offset } => {
                write!(f, "span offset {offset} is not a multiple of 4 bytes")
            }
            ArenaError::OutOfBounds { end, capacity } => {
                write!(f, "span reaches byte {end} of a {capacity}-byte arena")
            }
            ArenaError::Overlap { first, second } => {
                write!(f, "spans {first} and {second} overlap")
            }
        }
    }
}
