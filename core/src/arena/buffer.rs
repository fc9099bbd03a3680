//! The arena: one caller-owned buffer, lent out as disjoint f32 views.

use super::ArenaError;
use crate::tensor::{bytes_as_f32, bytes_as_f32_mut};
use core::ops::Range;

/// Where a tensor lives in an [`Arena`]: a byte offset (a multiple of 4) from the arena's
/// aligned base, and a length in f32 elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Byte offset from the arena's aligned base; a multiple of 4.
    pub offset: usize,
    /// Length in f32 elements (not bytes).
    pub len: usize,
}

impl Span {
    /// The span's bytes within the arena, or `None` on overflow.
    pub fn byte_range(&self) -> Option<Range<usize>> {
        let end = self.len.checked_mul(4)?.checked_add(self.offset)?;
        Some(self.offset..end)
    }
}

/// Step memory over a caller's buffer. The base is aligned to [`Arena::ALIGN`] so every
/// planned offset keeps that alignment for SIMD loads; views are checked against the
/// capacity and each other, never trusted.
pub struct Arena<'a> {
    buf: &'a mut [u8],
}

impl<'a> Arena<'a> {
    /// Alignment of the base: a cache line, and enough for any vector load.
    pub const ALIGN: usize = 64;

    /// Uses the 64-byte-aligned part of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Arena<'a> {
        let skip = (buf.as_ptr().addr().wrapping_neg() % Self::ALIGN).min(buf.len());
        Arena {
            buf: &mut buf[skip..],
        }
    }

    /// Bytes usable from the aligned base.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// All usable bytes, e.g. to clear them.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.buf
    }

    fn range(&self, span: Span) -> Result<Range<usize>, ArenaError> {
        if span.offset % 4 != 0 {
            return Err(ArenaError::Misaligned {
                offset: span.offset,
            });
        }
        let range = span.byte_range().ok_or(ArenaError::Overflow)?;
        if range.end > self.buf.len() {
            return Err(ArenaError::OutOfBounds {
                end: range.end,
                capacity: self.buf.len(),
            });
        }
        Ok(range)
    }

    /// A read-only f32 view of `span`.
    pub fn f32(&self, span: Span) -> Result<&[f32], ArenaError> {
        let range = self.range(span)?;
        bytes_as_f32(&self.buf[range]).ok_or(ArenaError::Misaligned {
            offset: span.offset,
        })
    }

    /// A writable f32 view of `span`.
    pub fn f32_mut(&mut self, span: Span) -> Result<&mut [f32], ArenaError> {
        let range = self.range(span)?;
        bytes_as_f32_mut(&mut self.buf[range]).ok_or(ArenaError::Misaligned {
            offset: span.offset,
        })
    }

    /// A writable f32 view of `span` that keeps the arena's whole lifetime, for results
    /// that outlive the step (the logits).
    pub fn into_f32_mut(self, span: Span) -> Result<&'a mut [f32], ArenaError> {
        let range = self.range(span)?;
        bytes_as_f32_mut(&mut self.buf[range]).ok_or(ArenaError::Misaligned {
            offset: span.offset,
        })
    }

    /// Disjoint writable f32 views of `N` spans at once (an op's inputs and outputs).
    /// Empty spans overlap nothing.
    pub fn f32_many<const N: usize>(
        &mut self,
        spans: [Span; N],
    ) -> Result<[&mut [f32]; N], ArenaError> {
        let mut ranges: [Range<usize>; N] = core::array::from_fn(|_| 0..0);
        for (range, &span) in ranges.iter_mut().zip(&spans) {
            *range = self.range(span)?;
        }
        for first in 0..N {
            for second in first + 1..N {
                let (a, b) = (&ranges[first], &ranges[second]);
                if !a.is_empty() && !b.is_empty() && a.start < b.end && b.start < a.end {
                    return Err(ArenaError::Overlap { first, second });
                }
            }
        }
        // Walk the spans in address order, splitting each off the rest of the buffer.
        let mut order: [usize; N] = core::array::from_fn(|i| i);
        order.sort_unstable_by_key(|&i| ranges[i].start);
        let mut views: [&mut [f32]; N] = core::array::from_fn(|_| Default::default());
        let mut rest: &mut [u8] = self.buf;
        let mut consumed = 0;
        for i in order {
            let range = ranges[i].clone();
            if range.is_empty() {
                continue;
            }
            let tail = core::mem::take(&mut rest);
            let (bytes, tail) = tail[range.start - consumed..].split_at_mut(range.len());
            rest = tail;
            consumed = range.end;
            views[i] = bytes_as_f32_mut(bytes).ok_or(ArenaError::Misaligned {
                offset: range.start,
            })?;
        }
        Ok(views)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::{Lifetime, plan_offsets};

    /// A buffer whose usable part starts `skew` bytes past a 64-byte boundary.
    #[repr(align(64))]
    struct Aligned([u8; 1024]);

    #[test]
    fn base_is_aligned() {
        let mut raw = Aligned([0; 1024]);
        for skew in [0, 1, 3, 63] {
            let arena = Arena::new(&mut raw.0[skew..]);
            let expect = if skew == 0 { 1024 } else { 1024 - 64 };
            assert_eq!(arena.capacity(), expect);
        }
        let mut tiny = Aligned([0; 1024]);
        assert_eq!(Arena::new(&mut tiny.0[1..10]).capacity(), 0);
        assert_eq!(Arena::new(&mut []).capacity(), 0);
    }

    #[test]
    fn views_write_where_the_span_says() {
        let mut raw = Aligned([0; 1024]);
        let mut arena = Arena::new(&mut raw.0[5..]);
        let a = Span { offset: 0, len: 4 };
        let b = Span { offset: 64, len: 2 };
        arena
            .f32_mut(a)
            .unwrap()
            .copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        {
            let [x, y] = arena.f32_many([a, b]).unwrap();
            y[0] = x[1] + x[2];
            y[1] = -1.0;
        }
        assert_eq!(arena.f32(b).unwrap(), &[5.0, -1.0]);
        let out = arena.into_f32_mut(Span { offset: 68, len: 1 }).unwrap();
        assert_eq!(out, &[-1.0]);
    }

    #[test]
    fn many_views_come_back_in_request_order() {
        let mut raw = Aligned([0; 1024]);
        let mut arena = Arena::new(&mut raw.0);
        let spans = [
            Span {
                offset: 128,
                len: 3,
            },
            Span { offset: 0, len: 0 },
            Span { offset: 16, len: 4 },
            Span {
                offset: 300,
                len: 0,
            },
            Span { offset: 12, len: 1 },
        ];
        let views = arena.f32_many(spans).unwrap();
        for (i, v) in views.into_iter().enumerate() {
            assert_eq!(v.len(), spans[i].len);
            v.fill(i as f32);
        }
        assert_eq!(
            arena.f32(Span { offset: 12, len: 5 }).unwrap(),
            &[4.0, 2.0, 2.0, 2.0, 2.0]
        );
        assert_eq!(
            arena
                .f32(Span {
                    offset: 128,
                    len: 3
                })
                .unwrap(),
            &[0.0; 3]
        );
    }

    #[test]
    fn bad_spans_are_errors() {
        let mut raw = Aligned([0; 1024]);
        let mut arena = Arena::new(&mut raw.0[..256]);
        let a = Span { offset: 0, len: 8 };
        assert_eq!(
            arena
                .f32_many([a, Span { offset: 28, len: 2 }])
                .unwrap_err(),
            ArenaError::Overlap {
                first: 0,
                second: 1
            }
        );
        assert_eq!(
            arena.f32_many([a, a]).unwrap_err(),
            ArenaError::Overlap {
                first: 0,
                second: 1
            }
        );
        assert_eq!(
            arena.f32_mut(Span { offset: 2, len: 1 }).unwrap_err(),
            ArenaError::Misaligned { offset: 2 }
        );
        assert_eq!(
            arena
                .f32_many([
                    a,
                    Span {
                        offset: 252,
                        len: 2
                    }
                ])
                .unwrap_err(),
            ArenaError::OutOfBounds {
                end: 260,
                capacity: 256
            }
        );
        assert_eq!(
            arena
                .f32(Span {
                    offset: 4,
                    len: usize::MAX / 2
                })
                .unwrap_err(),
            ArenaError::Overflow
        );
        assert!(
            arena
                .f32_many([
                    a,
                    Span {
                        offset: 32,
                        len: 56
                    }
                ])
                .is_ok()
        );
        assert_eq!(arena.f32_many::<0>([]).map(|v| v.len()), Ok(0));
    }

    #[test]
    fn planned_spans_never_alias_while_live() {
        // Three ops: x -> y, y -> z, (x, z) -> w; x lives across all of them.
        let lens = [16usize, 32, 32, 16];
        let lives = [
            Lifetime {
                bytes: 64,
                first_use: 0,
                last_use: 2,
            },
            Lifetime {
                bytes: 128,
                first_use: 0,
                last_use: 1,
            },
            Lifetime {
                bytes: 128,
                first_use: 1,
                last_use: 2,
            },
            Lifetime {
                bytes: 64,
                first_use: 2,
                last_use: 2,
            },
        ];
        let mut offsets = [0; 4];
        let total = plan_offsets(&lives, Arena::ALIGN, &mut offsets).unwrap();
        assert!(total < 64 + 128 + 128 + 64);
        let span = |i: usize| Span {
            offset: offsets[i],
            len: lens[i],
        };
        let mut raw = Aligned([0; 1024]);
        let mut arena = Arena::new(&mut raw.0[..total]);
        arena.f32_many([span(0), span(1)]).unwrap();
        arena.f32_many([span(1), span(2)]).unwrap();
        let [x, z, w] = arena.f32_many([span(0), span(2), span(3)]).unwrap();
        x.fill(1.0);
        z.fill(2.0);
        w.fill(3.0);
        assert!(arena.f32(span(0)).unwrap().iter().all(|&v| v == 1.0));
        assert!(arena.f32(span(2)).unwrap().iter().all(|&v| v == 2.0));
    }
}
