//! Region fusion on arbitrary lists of strided copies: the fused list is never longer,
//! copies the same number of elements, and produces exactly the same destination (or the
//! same refusal) as the list it came from, overlapping writes included.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tern_core::region::{Region, copy_regions, fuse};

const LEN: usize = 4096;
/// Most elements one input may copy, so that a huge box with zero strides (valid, and
/// fusable) cannot turn one run into minutes.
const MAX_ELEMENTS: usize = 1 << 16;

/// A number that is usually small (so regions fit the buffers and continue each other),
/// sometimes anything (so overflow and bounds checks are reached).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Num {
    Small(u8),
    Any(usize),
}

impl Num {
    fn get(self, small_max: usize) -> usize {
        match self {
            Num::Small(v) => usize::from(v) % (small_max + 1),
            Num::Any(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct RawRegion {
    src_offset: Num,
    dst_offset: Num,
    size: [Num; 3],
    src_stride: [Num; 3],
    dst_stride: [Num; 3],
    /// Start where the previous region's source and destination end, the case fusion joins.
    follow: bool,
}

fuzz_target!(|raw: Vec<RawRegion>| {
    let mut regions: Vec<Region> = Vec::with_capacity(raw.len());
    for r in raw.iter().take(12) {
        let mut region = Region {
            src_offset: r.src_offset.get(2048),
            dst_offset: r.dst_offset.get(2048),
            size: r.size.map(|n| n.get(16)),
            src_stride: r.src_stride.map(|s| s.get(64)),
            dst_stride: r.dst_stride.map(|s| s.get(64)),
        };
        if r.follow
            && let Some(prev) = regions.last()
            && let (Some(s), Some(d)) = (prev.src_end(), prev.dst_end())
        {
            region.src_offset = s;
            region.dst_offset = d;
        }
        regions.push(region);
    }
    let elements = |rs: &[Region]| {
        rs.iter()
            .try_fold(0usize, |acc, r| acc.checked_add(r.elements()?))
    };
    let Some(total) = elements(&regions).filter(|&n| n <= MAX_ELEMENTS) else {
        return;
    };

    let mut fused = regions.clone();
    let n = fuse(&mut fused);
    assert!(n <= regions.len());
    let fused = &fused[..n];
    assert_eq!(
        elements(fused),
        Some(total),
        "fusion changed the element count"
    );

    let src: Vec<u32> = (1..=LEN as u32).collect();
    let mut plain = vec![0u32; LEN];
    let mut joined = vec![0u32; LEN];
    let a = copy_regions(&src, &mut plain, &regions);
    let b = copy_regions(&src, &mut joined, fused);
    assert_eq!(
        a.is_ok(),
        b.is_ok(),
        "{a:?} vs {b:?}\n{regions:?}\n{fused:?}"
    );
    assert!(plain == joined, "different copies\n{regions:?}\n{fused:?}");

    for r in &regions {
        let one = r.fused();
        assert_eq!(one.elements(), r.elements());
        let mut x = vec![0u32; LEN];
        let mut y = vec![0u32; LEN];
        let a = copy_regions(&src, &mut x, std::slice::from_ref(r));
        let b = copy_regions(&src, &mut y, std::slice::from_ref(&one));
        assert_eq!(a.is_ok(), b.is_ok());
        assert!(x == y, "{r:?} fused alone to {one:?}");
    }
});
