//! The prefetch thread: while the compute threads work on one layer, it brings the next
//! layer's spilled rows into memory, asking the OS to read them ahead and then touching
//! every page so attention finds them mapped and never waits on a page fault.
//!
//! Prefetching is advice: attention reads the same bytes whether or not the thread got to
//! them first, so a busy thread simply skips a request rather than queueing work.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use crate::MappedFile;

/// Byte ranges of the spill file to bring in, at most two (a layer's keys and values).
pub(super) type Ranges = [(usize, usize); 2];

/// Bytes between touches: the smallest page size of the targets Tern runs on.
const PAGE: usize = 4096;

pub(super) struct Prefetcher {
    jobs: Option<SyncSender<Ranges>>,
    thread: Option<JoinHandle<()>>,
}

impl Prefetcher {
    pub fn start(map: Arc<MappedFile>) -> io::Result<Prefetcher> {
        // Room for the next layer's request while one is being read.
        let (jobs, rx) = sync_channel::<Ranges>(1);
        let thread = std::thread::Builder::new()
            .name("tern-kv-prefetch".into())
            .spawn(move || prefetch_loop(&map, rx))?;
        Ok(Prefetcher {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Asks for `ranges` to be brought in; dropped if the thread is still busy.
    pub fn request(&self, ranges: Ranges) {
        if let Some(jobs) = &self.jobs {
            match jobs.try_send(ranges) {
                Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }
}

fn prefetch_loop(map: &MappedFile, jobs: Receiver<Ranges>) {
    let (base, map_len) = (map.as_bytes().as_ptr(), map.len());
    for ranges in jobs {
        for (offset, len) in ranges {
            if len == 0 || offset.checked_add(len).is_none_or(|end| end > map_len) {
                continue;
            }
            // Starts the reads of pages not in memory at once, all of them in parallel.
            let _ = map.advise_willneed_range(offset, len);
            let mut sum = 0u8;
            for at in (offset..offset + len).step_by(PAGE) {
                // SAFETY: `offset <= at < offset + len <= map_len` (checked above), so the
                // address is inside the map, which `map` keeps alive. The read is volatile
                // and through a raw pointer: it makes no reference that would claim the byte
                // stays unchanged while the cache writes other blocks of the file.
                sum ^= unsafe { base.add(at).read_volatile() };
            }
            std::hint::black_box(sum);
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing the job channel ends the thread's loop.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
