//! Ctrl-C during generation. The first SIGINT asks the generation loop to stop after the
//! token in hand, so `tern run` still prints its timings and then exits 130, as llama.cpp's
//! CLI does, and `tern chat` goes back to its prompt; a second one before that ends the
//! process at once, for a prefill that is slow to reach the loop. Elsewhere than unix Ctrl-C keeps its default: the process ends.

use std::sync::atomic::{AtomicBool, Ordering};

/// The exit status of a run stopped by SIGINT: 128 + the signal's number, as shells report.
pub(super) const EXIT_STATUS: u8 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C has been pressed since [`install`].
pub(super) fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Forgets a Ctrl-C that has been answered (`tern chat`'s stopped reply), so the next one
/// stops the next reply instead of ending the process.
pub(super) fn clear() {
    REQUESTED.store(false, Ordering::Relaxed);
}

/// Routes SIGINT to [`requested`] for the rest of the process.
#[cfg(unix)]
pub(super) fn install() {
    extern "C" fn on_sigint(_: libc::c_int) {
        // Only async-signal-safe work here: an atomic swap, and `_exit` the second time.
        if REQUESTED.swap(true, Ordering::Relaxed) {
            // SAFETY: `_exit` is async-signal-safe and ends the process without running
            // anything that could hold a lock the interrupted thread holds.
            unsafe { libc::_exit(EXIT_STATUS.into()) };
        }
    }
    // SAFETY: a zeroed `sigaction` is a valid value (no flags, an empty mask once
    // `sigemptyset` runs); the handler is an `extern "C" fn(c_int)`, the form
    // `sa_sigaction` takes without SA_SIGINFO, and it touches only an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        // Without the handler Ctrl-C still ends the run, only without timings: nothing to
        // report.
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

/// Leaves Ctrl-C as it is: the process ends.
#[cfg(not(unix))]
pub(super) fn install() {}
