//! A program on a pseudo-terminal, as a user at a terminal runs it: its standard streams
//! are the terminal, which is its controlling terminal, so Ctrl-C typed there is SIGINT and
//! Ctrl-D at an empty line is the end of input.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A child process on a pseudo-terminal, with everything it wrote so far.
pub struct Terminal {
    master: File,
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    /// Starts `command` (its stdio replaced) on a new 100x30 terminal.
    pub fn spawn(mut command: Command) -> Terminal {
        // SAFETY: posix_openpt returns a new descriptor or -1; it is owned by `master` below.
        let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a valid descriptor that nothing else owns.
        let master = unsafe { File::from_raw_fd(fd) };
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: `fd` is an open pty master; `name` is writable for its whole length.
        unsafe {
            assert_eq!(libc::grantpt(fd), 0, "grantpt");
            assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
            assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        }
        // SAFETY: ptsname_r wrote a NUL-terminated path into `name`.
        let path = unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned();
        let size = libc::winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid.
        unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) };
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        command
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: setsid and ioctl are async-signal-safe; the closure allocates nothing.
        unsafe {
            command.pre_exec(|| {
                // A session of its own, whose controlling terminal is the pty (stdin).
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start the program on the terminal");
        // The parent's copies of the slave go with `command`, so that the master reads an
        // error once the child is gone.
        drop(command);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut chunk) {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Terminal {
            master,
            child,
            output,
        }
    }

    /// Types `keys` (`\r` is Enter, `\x03` Ctrl-C, `\x04` Ctrl-D).
    pub fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Everything shown so far, as text.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Bytes shown so far.
    pub fn shown(&self) -> usize {
        self.output.lock().unwrap().len()
    }

    /// Waits until the text shown from byte `from` on contains `needle`; returns the byte
    /// after it. Fails the test with the screen after `timeout`.
    pub fn wait_for(&self, from: usize, needle: &str, timeout: Duration) -> usize {
        self.wait_until(timeout, &format!("{needle:?}"), |shown| {
            let tail = shown.get(from..)?;
            let at = tail
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())?;
            Some(from + at + needle.len())
        })
    }

    /// Waits until at least `n` bytes were shown after byte `from`.
    pub fn wait_for_bytes(&self, from: usize, n: usize, timeout: Duration) {
        let what = format!("{n} bytes");
        self.wait_until(timeout, &what, |shown| {
            (shown.len() >= from + n).then_some(())
        });
    }

    fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        found: impl Fn(&[u8]) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(value) = found(&self.output.lock().unwrap()) {
                return value;
            }
            assert!(
                start.elapsed() < timeout,
                "no {what} within {timeout:?}; the terminal shows:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the program to end; fails the test if it runs past `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "still running after {timeout:?}; the terminal shows:\n{}",
                    self.screen()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
