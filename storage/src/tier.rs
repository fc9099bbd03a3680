//! The tiers data can live in, named once so that options, reports and loaders agree.

use core::fmt;

/// Where a kind of data lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// In anonymous memory the process owns: fastest, and the OS cannot take it back.
    Dram,
    /// In a mapped file: file-backed pages the OS pages in on use and may evict under pressure.
    Mapped,
    /// On flash, read on demand into small buffers and never kept resident.
    Flash,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Dram => "DRAM",
            Tier::Mapped => "mapped",
            Tier::Flash => "flash",
        })
    }
}
