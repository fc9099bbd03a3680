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
    LengthMismatch {
        /// Number of lifetimes given.
        lifetimes: usize,
        /// Number of offset slots given.
        offsets: usize,
    },
    /// Alignment must be a power of two.
    BadAlign {
        /// The alignment asked for, in bytes.
        align: usize,
    },
    /// A lifetime that ends before it starts.
    BadLifetime {
        /// Index of the lifetime in the slice given.
        index: usize,
        /// Index of the op it says first uses the tensor.
        first_use: usize,
        /// Index of the op it says last uses the tensor (below `first_use`).
        last_use: usize,
    },
    /// Sizes or offsets overflow `usize`.
    Overflow,
    /// A span whose byte offset is not a multiple of 4.
    Misaligned {
        /// The span's byte offset from the arena's base.
        offset: usize,
    },
    /// A span reaching `end` bytes into an arena of `capacity` bytes.
    OutOfBounds {
        /// Byte offset just past the span's last byte.
        end: usize,
        /// Usable bytes of the arena ([`Arena::capacity`]).
        capacity: usize,
    },
    /// Spans `first` and `second` (indices into the request) share bytes.
    Overlap {
        /// Index of the earlier span in the request.
        first: usize,
        /// Index of the later span in the request.
        second: usize,
    },
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
