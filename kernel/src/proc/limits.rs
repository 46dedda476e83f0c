//! Resource limits (getrlimit/setrlimit/prlimit64): one table per process,
//! shared by its threads, copied by fork, kept by execve. Linux's defaults
//! for a root shell. Where each limit is enforced is listed in
//! docs/syscalls.md.

use abi::{Errno, KResult};

use super::Process;

/// Number of limits (RLIMIT_CPU … RLIMIT_RTTIME).
pub const NLIMITS: usize = 16;
pub const INFINITY: u64 = u64::MAX;
pub const RLIMIT_FSIZE: usize = 1;
pub const RLIMIT_DATA: usize = 2;
pub const RLIMIT_STACK: usize = 3;
pub const RLIMIT_CORE: usize = 4;
pub const RLIMIT_NPROC: usize = 6;
pub const RLIMIT_NOFILE: usize = 7;
pub const RLIMIT_MEMLOCK: usize = 8;
pub const RLIMIT_AS: usize = 9;
pub const RLIMIT_SIGPENDING: usize = 11;
pub const RLIMIT_MSGQUEUE: usize = 12;
pub const RLIMIT_NICE: usize = 13;
pub const RLIMIT_RTPRIO: usize = 14;
/// The most descriptors a process may ask for (Linux's fs.nr_open is
/// 1048576; lower here so that a descriptor table stays a bounded amount
/// of kernel heap: 64 Ki slots are 1 MiB).
pub const NR_OPEN: u64 = 65_536;

/// (soft, hard) for each resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits(pub [(u64, u64); NLIMITS]);

impl Default for Limits {
    fn default() -> Limits {
        let mut l = [(INFINITY, INFINITY); NLIMITS];
        l[RLIMIT_STACK] = (8 << 20, INFINITY);
        l[RLIMIT_CORE] = (0, INFINITY);
        let nproc = super::MAX_PROCESSES as u64;
        l[RLIMIT_NPROC] = (nproc, nproc);
        l[RLIMIT_NOFILE] = (1024, 4096);
        l[RLIMIT_MEMLOCK] = (8 << 20, 8 << 20);
        l[RLIMIT_SIGPENDING] = (nproc, nproc);
        l[RLIMIT_MSGQUEUE] = (819_200, 819_200);
        l[RLIMIT_NICE] = (0, 0);
        l[RLIMIT_RTPRIO] = (0, 0);
        Limits(l)
    }
}

impl Limits {
    /// Sets `res` by Linux's rules for a privileged process: soft ≤ hard
    /// (EINVAL); NOFILE's hard limit at most [`NR_OPEN`] (EPERM).
    pub fn set(&mut self, res: usize, soft: u64, hard: u64) -> KResult<()> {
        if soft > hard {
            return Err(Errno::EINVAL);
        }
        if res == RLIMIT_NOFILE && hard > NR_OPEN {
            return Err(Errno::EPERM);
        }
        *self.0.get_mut(res).ok_or(Errno::EINVAL)? = (soft, hard);
        Ok(())
    }
}

/// The current process's soft limit for `res`.
pub fn soft(res: usize) -> u64 {
    super::sched::try_current().map_or(Limits::default().0[res].0, |p| cur(&p, res))
}

/// `p`'s soft limit for `res`.
pub fn cur(p: &Process, res: usize) -> u64 {
    p.group.limits.lock().0[res].0
}

/// The main thread's stack size for an execve now: the soft RLIMIT_STACK
/// in whole pages, at least 128 KiB (room for the arguments, which Linux
/// places whatever the limit) and at most 1 GiB (unlimited included: the
/// stack is a fixed mapping here, reserved below the top of user space,
/// where Linux grows it on demand up to the limit).
pub fn stack_size() -> u64 {
    soft(RLIMIT_STACK).clamp(128 << 10, 1 << 30) & !0xfff
}

/// The descriptor limit of the current process (RLIMIT_NOFILE), as a
/// table bound.
pub fn nofile() -> usize {
    soft(RLIMIT_NOFILE).min(NR_OPEN) as usize
}

/// RLIMIT_FSIZE for a write of `len` bytes at `pos` of a regular file:
/// the bytes that may be written; at or past the limit SIGXFSZ and
/// EFBIG, as Linux (a write that straddles it is cut short).
pub fn clip_write(pos: u64, len: usize) -> KResult<usize> {
    let limit = soft(RLIMIT_FSIZE);
    if limit == INFINITY || len == 0 {
        return Ok(len);
    }
    if pos >= limit {
        file_too_big();
        return Err(Errno::EFBIG);
    }
    Ok(len.min(usize::try_from(limit - pos).unwrap_or(usize::MAX)))
}

/// RLIMIT_FSIZE for growing a file to `size` (truncate).
pub fn check_size(size: u64) -> KResult<()> {
    if size > soft(RLIMIT_FSIZE) {
        file_too_big();
        return Err(Errno::EFBIG);
    }
    Ok(())
}

fn file_too_big() {
    if let Some(me) = super::sched::try_current() {
        super::signal::send(&me, super::signal::SIGXFSZ);
    }
}
