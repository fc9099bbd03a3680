//! Which CPUs this process may use, how they group into physical cores, and pinning a thread
//! to one of them. Linux and Android read sysfs and the affinity mask; elsewhere only the count of logical
//! CPUs is known and nothing is pinned.

use std::thread::available_parallelism;

/// Physical cores this process may run on: distinct (package, core) pairs among the CPUs in
/// its affinity mask, at most the OS's available parallelism (which also counts cgroup
/// quotas). Hyperthreads share a core's units, so a compute-bound pool wants one per core.
pub fn physical_cores() -> usize {
    let logical = available_parallelism().map_or(1, |n| n.get());
    let cores = allowed_cpus().and_then(|cpus| {
        let mut ids: Vec<(u32, u32)> = cpus.iter().map(|&c| core_of(c)).collect::<Option<_>>()?;
        ids.sort_unstable();
        ids.dedup();
        Some(ids.len())
    });
    cores.unwrap_or(logical).clamp(1, logical)
}

/// The CPUs this process may use, one per physical core first (in CPU order) and then their
/// hyperthread siblings, so that thread `i` pinned to entry `i` gets a core of its own for as
/// long as there are cores. `None` where the OS does not say.
pub fn cpu_order() -> Option<Vec<usize>> {
    let cpus = allowed_cpus()?;
    let mut seen = Vec::new();
    let (mut first, mut siblings) = (Vec::new(), Vec::new());
    for cpu in cpus {
        match core_of(cpu) {
            Some(core) if seen.contains(&core) => siblings.push(cpu),
            Some(core) => {
                seen.push(core);
                first.push(cpu);
            }
            None => first.push(cpu),
        }
    }
    first.extend(siblings);
    Some(first)
}

/// (package id, core id) of logical CPU `cpu`.
fn core_of(cpu: usize) -> Option<(u32, u32)> {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/sys/devices/system/cpu/cpu{cpu}/topology/{name}"))
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
    };
    Some((read("physical_package_id")?, read("core_id")?))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is plain bits, for which all zeros is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    let max = libc::CPU_SETSIZE as usize;
    // SAFETY: every index is below CPU_SETSIZE, inside the set.
    let cpus: Vec<usize> = (0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn allowed_cpus() -> Option<Vec<usize>> {
    None
}

/// Pins the calling thread to logical CPU `cpu`; does nothing where that is not allowed.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn pin_current_thread(cpu: usize) {
    if cpu >= libc::CPU_SETSIZE as usize {
        return;
    }
    // SAFETY: cpu_set_t is plain bits, for which all zeros is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above); `set` is a valid cpu_set_t of the
    // size passed. A failure (e.g. a CPU outside our cgroup) leaves the thread unpinned.
    unsafe {
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn pin_current_thread(_cpu: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_cores_is_between_one_and_the_logical_count() {
        let logical = available_parallelism().map_or(1, |n| n.get());
        let cores = physical_cores();
        assert!((1..=logical).contains(&cores), "{cores} of {logical}");
    }

    #[test]
    fn cpu_order_lists_each_allowed_cpu_once() {
        if let Some(mut cpus) = cpu_order() {
            let n = cpus.len();
            cpus.sort_unstable();
            cpus.dedup();
            assert_eq!(cpus.len(), n);
            assert!(n >= physical_cores());
        }
    }
}
