//! Typed argument generators. Every argument of every call in the table
//! is drawn from one of these kinds: valid values the fuzzer owns, the
//! edges (0, 1, page size), and values that must be refused (stale fds,
//! unmapped/read-only/kernel/non-canonical pointers, huge and negative
//! sizes, undefined flag bits).
//!
//! The fuzzer never hands the kernel a pointer to its own code, stack,
//! heap or log (only to `Env`'s scratch mappings and to addresses no
//! process owns), nor a file name outside its scratch directory for
//! anything that writes: what it breaks must be the kernel, not itself.

use crate::rng::Rng;

pub const PAGE: u64 = 4096;
/// Pages of scratch memory the kernel may read and write.
pub const SCRATCH_PAGES: u64 = 16;
/// Bytes of the arena (see `Env::scratch`).
pub const ARENA: u64 = 64 << 20;
/// PROT_NONE bytes reserved above the arena and never mapped: a copy the
/// kernel makes into a fuzzed read-write mapping at the arena's top ends
/// there (EFAULT), not in whatever mapping lies above (the page shared
/// with the parent did: its counters came back as random bytes).
pub const ARENA_GAP: u64 = 16 * PAGE;

/// An argument kind.
#[derive(Clone, Copy, Debug)]
pub enum A {
    /// An fd of any kind the fuzzer holds, or a stale/invalid number.
    Fd,
    /// A target fd number (dup2/dup3): its own, free ones, invalid ones.
    NewFd,
    /// dirfd of the *at calls: AT_FDCWD, a dir fd, any fd.
    DirFd,
    /// A pointer for the kernel to read or write.
    Ptr,
    /// A pointer that is never valid (execve: a valid one could run a
    /// program over the fuzzer).
    BadPtr,
    /// A byte count.
    Len,
    /// A small count (nfds, iovcnt, vlen).
    Count,
    /// Flags: random subsets of the mask, the mask, random bits.
    Flags(u64),
    /// Any integer.
    Int,
    /// A file offset.
    Off,
    /// A path the call may create, write, remove (scratch dir only).
    PathW,
    /// A path only looked at (scratch and system paths).
    PathR,
    /// A pid: own, parent, sibling, child, none, invalid.
    Pid,
    /// A signal that cannot end or stop the worker.
    SafeSig,
    /// A sigset pointer whose mask keeps SIGALRM deliverable (the tick
    /// that breaks every blocking call).
    SafeMask,
    /// A page-aligned (mostly) address for the mm calls.
    Addr,
    /// Prot bits.
    Prot,
    /// A timespec/timeval pointer: short, zero, huge, invalid, bad.
    Time,
    /// An iovec array pointer (entries good and bad).
    Iov,
    /// A clock id.
    Clock,
    /// A small selector (which/who/cmd/resource): -1..20.
    Small,
    /// One of these values, or (1 in 8) any integer.
    Pick(&'static [u64]),
    /// open flags that cannot write, create or truncate (for PathR).
    RoFlags,
}

pub struct Env {
    pub rng: Rng,
    /// Start of the arena: ARENA bytes reserved PROT_NONE at start, the
    /// only place the mm calls may map, unmap or change. It begins with
    /// scratch (SCRATCH_PAGES read-write pages), then a guard page
    /// (PROT_NONE), then a read-only page.
    pub scratch: u64,
    pub ro: u64,
    pub guard: u64,
    /// fds it holds (files, dirs, pipes, /dev/null, the tty, …).
    pub fds: Vec<i32>,
    /// fds it closed (stale numbers).
    pub stale: Vec<i32>,
    /// Directory fds (for the *at calls).
    pub dirfds: Vec<i32>,
    pub pid: i32,
    pub ppid: i32,
    pub siblings: Vec<i32>,
    pub children: Vec<i32>,
    pub dir: String,
    /// Backing store of C strings handed out as paths (kept alive until
    /// the call returns).
    pub strings: Vec<Vec<u8>>,
}

impl Env {
    pub fn gen(&mut self, a: A) -> u64 {
        let r = &mut self.rng;
        match a {
            A::Fd => match r.below(12) {
                0 => self.stale.last().map(|&f| f as u64).unwrap_or(77),
                1 => -1i64 as u64,
                2 => r.pick(&[1 << 20, i32::MAX as u64, 1023, 1024, 65536]),
                3 => r.below(64) + 3,
                _ => self
                    .fds
                    .get(r.below(self.fds.len() as u64) as usize)
                    .map_or(3, |&f| f as u64),
            },
            A::NewFd => match r.below(6) {
                0 => -1i64 as u64,
                1 => r.pick(&[1023, 1024, 1 << 20, i32::MAX as u64]),
                2 => self
                    .fds
                    .get(r.below(self.fds.len() as u64) as usize)
                    .map_or(3, |&f| f as u64),
                // Free numbers above what the base set uses; never 0-2
                // (the console the harness reads).
                _ => 100 + r.below(100),
            },
            A::DirFd => match r.below(5) {
                0 | 1 => libc::AT_FDCWD as i64 as u64,
                2 => self
                    .dirfds
                    .get(r.below(self.dirfds.len() as u64) as usize)
                    .map_or(3, |&f| f as u64),
                _ => self.gen(A::Fd),
            },
            A::Ptr => self.ptr(),
            A::BadPtr => self.bad_ptr(),
            A::Len => match r.below(14) {
                0 => 0,
                1 => 1,
                2 => PAGE - 1,
                3 => PAGE,
                4 => PAGE + 1,
                5 => 1 << 40,
                6 => u64::MAX,
                7 => -4096i64 as u64,
                8 => i32::MAX as u64 + 1,
                9 => r.below(SCRATCH_PAGES * PAGE),
                _ => r.below(256),
            },
            A::Count => match r.below(8) {
                0 => 0,
                1 => -1i64 as u64,
                2 => r.pick(&[1024, 1025, 1 << 20, u32::MAX as u64]),
                _ => r.below(8),
            },
            A::Flags(m) => match r.below(8) {
                0 => 0,
                1 => m,
                2 => r.next(),
                3 => r.next() as u32 as u64,
                _ => r.next() & m,
            },
            A::Int => match r.below(8) {
                0 => 0,
                1 => -1i64 as u64,
                2 => r.next(),
                3 => r.next() as u32 as u64,
                4 => i32::MIN as i64 as u64,
                _ => r.below(16),
            },
            A::Off => match r.below(8) {
                0 => 0,
                1 => PAGE,
                2 => -1i64 as u64,
                3 => 1 << 40,
                4 => i64::MAX as u64,
                _ => r.below(3 * PAGE),
            },
            A::PathW => self.path(true),
            A::PathR => self.path(false),
            A::Pid => match r.below(10) {
                0 => 0,
                1 => self.pid as u64,
                2 => self.ppid as u64,
                3 => self
                    .siblings
                    .get(r.below(self.siblings.len() as u64) as usize)
                    .map_or(1, |&p| p as u64),
                4 => self.children.last().map_or(99_999, |&p| p as u64),
                5 => -1i64 as u64,
                6 => (-(self.pid as i64)) as u64,
                7 => r.pick(&[99_999, 1 << 22, i32::MAX as u64, i32::MIN as i64 as u64]),
                _ => 1,
            },
            // SIGKILL/SIGSTOP/SIGSEGV… would end or stop the worker;
            // these are ignored by default or handled by it; 0 and 65
            // probe the edges.
            A::SafeSig => r.pick(&[
                0,
                libc::SIGUSR1,
                libc::SIGURG,
                libc::SIGWINCH,
                libc::SIGCHLD,
                libc::SIGCONT,
                65,
                -1,
                1000,
            ]) as i64 as u64,
            A::SafeMask => match r.below(4) {
                0 => 0,
                1 => self.bad_ptr(),
                _ => {
                    let at = self.scratch + r.below(SCRATCH_PAGES * PAGE / 8 - 1) * 8;
                    let mask = r.next() & !(1u64 << (libc::SIGALRM - 1));
                    write_u64(at, mask);
                    at
                }
            },
            A::Addr => match r.below(10) {
                0 => self.scratch + r.below(SCRATCH_PAGES) * PAGE,
                1 => self.guard,
                2 => self.ro,
                3 => self.scratch + r.below(PAGE),
                4 => self.bad_ptr() & !(PAGE - 1),
                5 => 0,
                _ => self.scratch + r.below(ARENA / PAGE) * PAGE,
            },
            A::Prot => match r.below(6) {
                0 => r.next() as u32 as u64,
                _ => r.below(8),
            },
            A::Time => match r.below(8) {
                0 => 0,
                1 => self.bad_ptr(),
                2 => self.ptr(),
                _ => {
                    let at = self.scratch + r.below(SCRATCH_PAGES * PAGE / 16 - 1) * 16;
                    let (s, ns) = match r.below(6) {
                        0 => (0, 0),
                        1 => (0, r.below(2_000_000)),
                        2 => (u64::MAX >> 1, 999_999_999),
                        3 => (-1i64 as u64, 0),
                        4 => (0, 1_000_000_000),
                        _ => (0, r.below(20_000)),
                    };
                    write_u64(at, s);
                    write_u64(at + 8, ns);
                    at
                }
            },
            A::Iov => {
                if r.one_in(4) {
                    return self.ptr();
                }
                let n = 1 + self.rng.below(4);
                let at = self.scratch + self.rng.below(SCRATCH_PAGES * PAGE / 16 - n - 1) * 16;
                for i in 0..n {
                    let p = self.ptr();
                    let l = self.gen(A::Len);
                    write_u64(at + 16 * i, p);
                    write_u64(at + 16 * i + 8, l);
                }
                at
            }
            A::Clock => {
                let any = r.next() as u32 as u64;
                r.pick(&[0, 1, 2, 3, 4, 5, 6, 7, 11, 16, -1i64 as u64, any])
            }
            A::Small => r.below(22).wrapping_sub(1),
            A::Pick(xs) => {
                if r.one_in(8) {
                    r.next() as u32 as u64
                } else {
                    r.pick(xs)
                }
            }
            A::RoFlags => {
                let no = (libc::O_WRONLY
                    | libc::O_RDWR
                    | libc::O_TRUNC
                    | libc::O_CREAT
                    | libc::O_APPEND) as u64
                    | 0o20000000; // __O_TMPFILE
                let f = self.gen(A::Flags(0o37777777));
                f & !no
            }
        }
    }

    /// A pointer: mostly into scratch, else at every edge.
    fn ptr(&mut self) -> u64 {
        let r = &mut self.rng;
        let end = self.scratch + SCRATCH_PAGES * PAGE;
        match r.below(16) {
            0 => end - 1 - r.below(64),
            1 => self.ro + r.below(PAGE),
            2 => 0,
            3 => self.guard + r.below(PAGE),
            4 | 5 => self.bad_ptr(),
            // Somewhere in the arena: mapped by a fuzzed mmap or not.
            6 => self.scratch + r.below(ARENA),
            _ => self.scratch + r.below(SCRATCH_PAGES * PAGE),
        }
    }

    /// Addresses no user process may touch.
    fn bad_ptr(&mut self) -> u64 {
        let r = &mut self.rng;
        match r.below(8) {
            0 => 0,
            1 => 0xffff_8000_0000_0000 + r.below(1 << 40),
            2 => 0xffff_ffff_8000_0000 + r.below(1 << 24),
            3 => 0x0000_8000_0000_0000 + r.below(1 << 40),
            4 => 0x8000_0000_0000_0000,
            5 => u64::MAX - r.below(16),
            _ => self.guard + r.below(PAGE),
        }
    }

    /// A NUL-terminated path (or a bad pointer): `write` chooses names a
    /// call may create, change or remove, all in the scratch directory.
    fn path(&mut self, write: bool) -> u64 {
        const NAMES: &[&str] = &[
            "f0", "f1", "d0", "d0/f2", "d0/d1", "p0", "l0", "", ".", "..",
        ];
        const SYS: &[&str] = &[
            "/",
            "/dev/null",
            "/dev/zero",
            "/dev/tty",
            "/proc/self/maps",
            "/proc/meminfo",
            "/proc/self/stat",
            "/proc/self/exe",
            "/usr/bin/rsefuzz",
            "/bin/sh",
            "/etc",
            "/nonexistent/x",
            "/proc/self/fd/3",
            "/dev/urandom",
            "/tmp",
        ];
        let r = &mut self.rng;
        let s: Vec<u8> = match r.below(12) {
            0 => return self.bad_ptr(),
            1 => return self.ptr(),
            // Longer than PATH_MAX, and a component longer than NAME_MAX.
            2 => vec![b'a'; if r.one_in(2) { 5000 } else { 300 }],
            3 if !write => r.pick(SYS).as_bytes().to_vec(),
            4 => format!("{}/{}", self.dir, r.pick(NAMES)).into_bytes(),
            _ => r.pick(NAMES).as_bytes().to_vec(),
        };
        let mut s = s;
        s.push(0);
        let p = s.as_ptr() as u64;
        self.strings.push(s);
        p
    }
}

/// Writes a value into scratch memory (a timespec, an iovec, a sigset
/// the generators build).
pub fn write_u64(at: u64, v: u64) {
    // SAFETY: `at` is inside scratch, which the worker maps read-write
    // again (Worker::repair) after every call that could change it, so
    // it is mapped and writable whenever a generator runs; nothing else
    // in the program uses those pages.
    unsafe { (at as *mut u64).write_unaligned(v) }
}
