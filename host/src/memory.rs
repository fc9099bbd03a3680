//! Where the memory goes: what the engine keeps in each tier (repacked in DRAM, mapped from
//! the model file), what a session adds (KV cache, activation arena), and what the OS says
//! the process holds. Printed by `tern run --memory-report` and `tern bench`.

use std::fmt;

use tern_storage::Tier;

/// The engine's share: weights by tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineMemory {
    /// Weights repacked by the backend: anonymous memory the process owns.
    pub weights_dram: u64,
    /// Weights read in place from the mapped model file: file-backed pages the OS may evict.
    pub weights_mapped: u64,
    /// Repacked weights mapped from a packed-weight cache file: file-backed too.
    pub weights_cached: u64,
    /// Weights in a device's memory (the Vulkan backend), the embedding table included.
    pub weights_device: u64,
    /// The embedding table's bytes, in `embeddings_tier` (0 on a device, whose weights
    /// include the table).
    pub embeddings: u64,
    /// Where the embedding table lives.
    pub embeddings_tier: Tier,
}

impl Default for EngineMemory {
    fn default() -> Self {
        EngineMemory {
            weights_dram: 0,
            weights_mapped: 0,
            weights_cached: 0,
            weights_device: 0,
            embeddings: 0,
            embeddings_tier: Tier::Mapped,
        }
    }
}

/// A session's share.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionMemory {
    /// Bytes of the KV cache in DRAM: the whole cache, or the newest positions when older ones
    /// spill to flash (0 on a device).
    pub kv_dram: u64,
    /// Bytes of KV rows spilled to the flash file so far (0 without spilling).
    pub kv_flash: u64,
    /// The KV cache in a device's memory (the Vulkan backend).
    pub kv_device: u64,
    /// Activations and scratch of the largest step (in device memory on a device).
    pub arena: u64,
}

/// What the OS counts for this process (Linux `/proc/self/status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Resident anonymous memory: heap, repacked weights, KV cache.
    pub rss_anon: u64,
    /// Resident file-backed memory: the mapped model file.
    pub rss_file: u64,
    /// The most resident memory the process has held (VmHWM).
    pub peak_rss: u64,
}

impl ProcessMemory {
    /// This process's counts, where the OS gives them.
    pub fn read() -> Option<ProcessMemory> {
        ProcessMemory::parse(&std::fs::read_to_string("/proc/self/status").ok()?)
    }

    /// Parses the `RssAnon`, `RssFile` and `VmHWM` lines (in kB) of a status file.
    pub fn parse(status: &str) -> Option<ProcessMemory> {
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kb: u64 = line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            kb.checked_mul(1024)
        };
        Some(ProcessMemory {
            rss_anon: field("RssAnon:")?,
            rss_file: field("RssFile:")?,
            peak_rss: field("VmHWM:")?,
        })
    }
}

/// Everything at one moment, for people to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// The engine's weights and embedding table.
    pub engine: EngineMemory,
    /// The session's KV cache and arena, when a session is reported on.
    pub session: Option<SessionMemory>,
    /// What the OS counts for the process, where it gives the counts (Linux).
    pub process: Option<ProcessMemory>,
}

impl fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.engine;
        if e.weights_device > 0 {
            writeln!(
                f,
                "  weights     {} in device memory (the embedding table included)",
                Bytes(e.weights_device)
            )?;
        } else {
            writeln!(
                f,
                "  weights     {} in DRAM (repacked), {} mapped from the packed-weight cache, \
                 {} mapped from the model file",
                Bytes(e.weights_dram),
                Bytes(e.weights_cached),
                Bytes(e.weights_mapped)
            )?;
            let where_embeddings = match e.embeddings_tier {
                Tier::Dram => "in DRAM (a copy of the table)",
                Tier::Mapped => "mapped from the model file",
                Tier::Flash => "on flash (one row read per token)",
            };
            writeln!(
                f,
                "  embeddings  {} {where_embeddings}",
                Bytes(e.embeddings)
            )?;
        }
        if let Some(s) = &self.session {
            if s.kv_device > 0 {
                writeln!(f, "  KV cache    {} in device memory", Bytes(s.kv_device))?;
                writeln!(f, "  arena       {} in device memory", Bytes(s.arena))?;
            } else {
                writeln!(
                    f,
                    "  KV cache    {} in DRAM, {} on flash",
                    Bytes(s.kv_dram),
                    Bytes(s.kv_flash)
                )?;
                writeln!(f, "  arena       {}", Bytes(s.arena))?;
            }
        }
        match &self.process {
            Some(p) => writeln!(
                f,
                "  process     RssAnon {}, RssFile {}, peak RSS {}",
                Bytes(p.rss_anon),
                Bytes(p.rss_file),
                Bytes(p.peak_rss)
            ),
            None => writeln!(f, "  process     (the OS gives no counts)"),
        }
    }
}

/// A byte count in binary units with one decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut v = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while v >= 1024.0 && unit + 1 < UNITS.len() {
            v /= 1024.0;
            unit += 1;
        }
        write!(f, "{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\ttern\nVmHWM:\t  743088 kB\nVmRSS:\t  371544 kB\n\
                          RssAnon:\t  362100 kB\nRssFile:\t    9444 kB\nRssShmem:\t       0 kB\n";

    #[test]
    fn status_lines_become_bytes() {
        let p = ProcessMemory::parse(STATUS).unwrap();
        assert_eq!(p.rss_anon, 362_100 * 1024);
        assert_eq!(p.rss_file, 9_444 * 1024);
        assert_eq!(p.peak_rss, 743_088 * 1024);
        assert_eq!(ProcessMemory::parse("Name:\ttern\n"), None);
        assert_eq!(
            ProcessMemory::parse("RssAnon: lots kB\nRssFile: 1 kB\nVmHWM: 1 kB"),
            None
        );
    }

    #[test]
    fn this_process_has_counts_on_linux() {
        if cfg!(target_os = "linux") {
            let p = ProcessMemory::read().unwrap();
            assert!(p.peak_rss >= p.rss_anon && p.rss_anon > 0);
        }
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(Bytes(0).to_string(), "0 B");
        assert_eq!(Bytes(1023).to_string(), "1023 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(363 << 20).to_string(), "363.0 MiB");
        assert_eq!(Bytes(3 << 30).to_string(), "3.0 GiB");
    }

    #[test]
    fn the_report_names_every_tier() {
        let r = MemoryReport {
            engine: EngineMemory {
                weights_dram: 363 << 20,
                weights_cached: 2 << 20,
                weights_mapped: 1 << 20,
                weights_device: 0,
                embeddings: 130 << 20,
                embeddings_tier: Tier::Flash,
            },
            session: Some(SessionMemory {
                kv_dram: 112 << 20,
                kv_flash: 0,
                kv_device: 0,
                arena: 14 << 20,
            }),
            process: ProcessMemory::parse(STATUS),
        }
        .to_string();
        for part in [
            "363.0 MiB in DRAM",
            "2.0 MiB mapped from the packed-weight cache",
            "1.0 MiB mapped from the model file",
            "embeddings  130.0 MiB on flash",
            "KV cache    112.0 MiB in DRAM, 0 B on flash",
            "arena       14.0 MiB",
            "RssAnon 353.6 MiB",
        ] {
            assert!(r.contains(part), "{part} in\n{r}");
        }
    }

    #[test]
    fn a_device_report_says_device_memory() {
        let r = MemoryReport {
            engine: EngineMemory {
                weights_device: 800 << 20,
                ..EngineMemory::default()
            },
            session: Some(SessionMemory {
                kv_device: 56 << 20,
                arena: 9 << 20,
                ..SessionMemory::default()
            }),
            process: None,
        }
        .to_string();
        for part in [
            "weights     800.0 MiB in device memory",
            "KV cache    56.0 MiB in device memory",
            "arena       9.0 MiB in device memory",
        ] {
            assert!(r.contains(part), "{part} in\n{r}");
        }
        assert!(!r.contains("DRAM"), "{r}");
    }
}
