//! One fuzzing worker process: draws calls from the table, makes them,
//! checks what comes back, and between calls forks short-lived children
//! and signals its siblings.

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::gen::{write_u64, Env, A, ARENA, ARENA_GAP, PAGE, SCRATCH_PAGES};
use crate::rng::{derive, Rng};
use crate::shared::{Shared, Slot};
use crate::table::{Call, BOGUS_NRS, CALLS};

static TICKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    TICKS.fetch_add(1, Relaxed);
}

/// Calls between resets of the fd table, timers and mappings.
const RESET_EVERY: u64 = 1024;
const CANARY_WORDS: usize = 512;

pub struct Worker {
    env: Env,
    idx: usize,
    seed: u64,
    slot: &'static Slot,
    shared: &'static Shared,
    workers: usize,
    trace: bool,
    /// Mappings made by fuzzed mmap calls outside the arena.
    outside: Vec<(u64, u64)>,
    canary: Box<[u64; CANARY_WORDS]>,
    /// In a churn child: log nothing, do not fork.
    child: bool,
}

fn sys(nr: i64, a: &[u64; 6]) -> i64 {
    // SAFETY: raw system call with fuzzed arguments; the generators keep
    // every pointer out of memory this program uses (see gen.rs).
    unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Installs `on_signal` for `sig` without SA_RESTART (so blocking calls
/// return EINTR on the tick).
pub fn handle(sig: i32) {
    // SAFETY: a plain sigaction with a valid handler and empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

fn ignore(sig: i32) {
    // SAFETY: sets SIG_IGN.
    unsafe {
        libc::signal(sig, libc::SIG_IGN);
    }
}

/// The 20 ms SIGALRM tick that breaks every blocking call.
fn arm_tick() {
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 20_000,
    };
    let it = libc::itimerval {
        it_interval: tv,
        it_value: tv,
    };
    // SAFETY: valid itimerval.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
}

fn open(path: &str, flags: i32) -> i32 {
    let c = CString::new(path).unwrap_or_default();
    // SAFETY: valid C string.
    unsafe { libc::open(c.as_ptr(), flags, 0o644) }
}

impl Worker {
    pub fn new(
        idx: usize,
        seed: u64,
        workers: usize,
        shared: &'static Shared,
        trace: bool,
    ) -> Worker {
        // SAFETY: reserves the arena and the gap above it, PROT_NONE,
        // anywhere.
        let arena = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                (ARENA + ARENA_GAP) as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(arena != libc::MAP_FAILED, "arena");
        let scratch = arena as u64;
        let dir = format!("/tmp/rsefuzz.{idx}");
        let mut canary = Box::new([0u64; CANARY_WORDS]);
        let mut r = Rng::new(seed ^ 0xca4a);
        for w in canary.iter_mut() {
            *w = r.next();
        }
        // SAFETY: getpid/getppid.
        let (pid, ppid) = unsafe { (libc::getpid(), libc::getppid()) };
        let mut w = Worker {
            env: Env {
                rng: Rng::new(seed),
                scratch,
                guard: scratch + SCRATCH_PAGES * PAGE,
                ro: scratch + (SCRATCH_PAGES + 1) * PAGE,
                fds: Vec::new(),
                stale: Vec::new(),
                dirfds: Vec::new(),
                pid,
                ppid,
                siblings: Vec::new(),
                children: Vec::new(),
                dir,
                strings: Vec::new(),
            },
            idx,
            seed,
            slot: &shared.slots[idx],
            shared,
            workers,
            trace,
            outside: Vec::new(),
            canary,
            child: false,
        };
        w.slot.seed.store(seed, Relaxed);
        handle(libc::SIGALRM);
        handle(libc::SIGUSR1);
        ignore(libc::SIGPIPE);
        let c = CString::new(w.env.dir.clone()).unwrap_or_default();
        // SAFETY: valid C string.
        unsafe { libc::mkdir(c.as_ptr(), 0o755) };
        w.repair();
        w.reset();
        arm_tick();
        w
    }

    /// Scratch read-write, guard PROT_NONE, the read-only page read-only,
    /// and the cwd back in the scratch directory.
    fn repair(&mut self) {
        let e = &self.env;
        // SAFETY: MAP_FIXED inside the arena this worker reserved.
        unsafe {
            let p = libc::mmap(
                e.scratch as *mut libc::c_void,
                ((SCRATCH_PAGES + 2) * PAGE) as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            );
            assert!(p as u64 == e.scratch, "re-mapping scratch failed");
            libc::mprotect(e.guard as *mut libc::c_void, PAGE as usize, libc::PROT_NONE);
            libc::mprotect(e.ro as *mut libc::c_void, PAGE as usize, libc::PROT_READ);
        }
    }

    fn chdir_home(&self) {
        let c = CString::new(self.env.dir.clone()).unwrap_or_default();
        // SAFETY: valid C string.
        unsafe { libc::chdir(c.as_ptr()) };
    }

    /// Closes every fd it may have (3..256 and those it recorded), deletes
    /// timers, unmaps what fuzzed mmaps made outside the arena, reopens
    /// the base set of fds (one of each kind).
    fn reset(&mut self) {
        // SAFETY: closing fds/timers this worker owns (never 0-2);
        // munmap of ranges the kernel returned from this worker's mmap.
        unsafe {
            for fd in (3..256).chain(self.env.fds.iter().copied().filter(|&f| f >= 256)) {
                libc::close(fd);
            }
            for t in 0..32 {
                libc::syscall(libc::SYS_timer_delete, t);
            }
            for (a, l) in self.outside.drain(..) {
                libc::munmap(a as *mut libc::c_void, l as usize);
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        }
        self.chdir_home();
        let e = &mut self.env;
        e.fds.clear();
        e.dirfds.clear();
        let d = &e.dir;
        let f0 = open(&format!("{d}/f0"), libc::O_RDWR | libc::O_CREAT);
        let _ = std::fs::write(format!("{d}/f1"), b"rsefuzz data\n");
        let f1 = open(&format!("{d}/f1"), libc::O_RDONLY);
        let dir = open(d, libc::O_RDONLY | libc::O_DIRECTORY);
        let null = open("/dev/null", libc::O_RDWR);
        let zero = open("/dev/zero", libc::O_RDONLY);
        let mut tty = open("/dev/tty", libc::O_RDONLY | libc::O_NONBLOCK);
        if tty < 0 {
            tty = open("/dev/console", libc::O_RDONLY | libc::O_NONBLOCK);
        }
        let procf = open("/proc/self/stat", libc::O_RDONLY);
        let mut p = [0i32; 2];
        // SAFETY: valid array of two ints.
        unsafe { libc::pipe(p.as_mut_ptr()) };
        // An io_uring fd, zeroed params.
        let mut params = [0u8; 120];
        // SAFETY: io_uring_setup reads/writes 120 bytes of params.
        let ring =
            unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) } as i32;
        for fd in [f0, f1, dir, null, zero, tty, procf, p[0], p[1], ring] {
            if fd >= 3 {
                e.fds.push(fd);
            }
        }
        if dir >= 3 {
            e.dirfds.push(dir);
        }
    }

    fn stat(&self, i: usize) {
        self.slot.stats[i].fetch_add(1, Relaxed);
    }

    fn siblings(&mut self) {
        if self.env.siblings.is_empty() {
            self.env.siblings = (0..self.workers)
                .filter(|&i| i != self.idx)
                .map(|i| self.shared.slots[i].pid.load(Relaxed) as i32)
                .filter(|&p| p > 0)
                .collect();
        }
    }

    /// Runs `calls` calls; Err(why) on a broken invariant.
    pub fn run(&mut self, calls: u64) -> Result<(), String> {
        for seq in 0..calls {
            self.env.strings.clear();
            if seq > 0 && seq % RESET_EVERY == 0 {
                self.reset();
            }
            if !self.child && self.env.rng.one_in(200) {
                self.churn(seq);
            }
            if !self.child && self.env.rng.one_in(100) {
                self.signal_sibling();
            }
            self.one(seq)?;
            if seq % 256 == 255 {
                self.check_canary()?;
            }
        }
        self.reap_all();
        Ok(())
    }

    fn one(&mut self, seq: u64) -> Result<(), String> {
        let (nr, kinds): (i64, &[A]) = if self.env.rng.one_in(64) {
            (self.env.rng.pick(BOGUS_NRS), &[A::Int, A::Int, A::Ptr])
        } else {
            let c: &Call = &CALLS[self.env.rng.below(CALLS.len() as u64) as usize];
            (c.nr, c.args)
        };
        let mut a = [0u64; 6];
        for (i, k) in kinds.iter().enumerate() {
            a[i] = self.env.gen(*k);
        }
        // Unused registers get junk too: the kernel must ignore them.
        for x in a.iter_mut().skip(kinds.len()) {
            *x = self.env.rng.next();
        }
        self.fixup(nr, &mut a);
        if !self.child {
            self.slot.log(seq, nr, &a);
            if self.trace {
                let line = format!("w{} #{seq} {}\n", self.idx, crate::format_call(nr, &a, ""));
                // SAFETY: writes a buffer we own to stderr.
                unsafe { libc::write(2, line.as_ptr() as *const libc::c_void, line.len()) };
            }
        }
        let r = sys(nr, &a);
        let err = if r == -1 { errno() } else { 0 };
        if !self.child {
            self.slot.ret(seq, if r == -1 { -(err as i64) } else { r });
        }
        match (r, err) {
            (-1, libc::EFAULT) => self.stat(2),
            (-1, libc::ENOSYS) => self.stat(3),
            (-1, libc::EINTR) => self.stat(4),
            (-1, _) => self.stat(1),
            _ => self.stat(0),
        }
        self.after(nr, &a, r);
        self.check(nr, &a, r, err)
    }

    /// Keeps a call from ending the worker or the harness (see table.rs).
    fn fixup(&mut self, nr: i64, a: &mut [u64; 6]) {
        let e = &mut self.env;
        let base = e.scratch;
        let in_arena = |x: u64| x >= base && x < base + ARENA;
        let in_scratch = |x: u64| x >= base && x < base + SCRATCH_PAGES * PAGE - 64;
        match nr {
            libc::SYS_prctl if a[0] == 22 || a[0] == 26 => a[0] = 0,
            libc::SYS_arch_prctl
                if a[0] == 0x1002 || a[0] == 0x1012 || (0x2001..=0x2003).contains(&a[0]) =>
            {
                a[0] = 0x1003
            }
            libc::SYS_rt_sigaction => {
                a[0] = e.rng.pick(&[
                    0,
                    libc::SIGURG,
                    libc::SIGWINCH,
                    libc::SIGCHLD,
                    libc::SIGCONT,
                    libc::SIGKILL,
                    libc::SIGSTOP,
                    65,
                ]) as u64;
                if !in_scratch(a[1]) && a[1] != 0 {
                    a[1] = e.gen(A::BadPtr);
                }
                if in_scratch(a[1]) {
                    // handler SIG_DFL/SIG_IGN, any flags (restorer 0).
                    write_u64(a[1], e.rng.below(2));
                    write_u64(a[1] + 8, e.rng.next() as u32 as u64 | 0x0400_0000);
                    write_u64(a[1] + 16, 0);
                    write_u64(a[1] + 24, e.rng.next());
                }
            }
            libc::SYS_kill | libc::SYS_tkill | libc::SYS_tgkill => {
                let sig = if nr == libc::SYS_tgkill { 2 } else { 1 };
                let targets: Vec<u64> = if nr == libc::SYS_tgkill {
                    vec![a[0], a[1]]
                } else {
                    vec![a[0]]
                };
                let ours = |p: u64| p as i32 == e.pid || e.siblings.contains(&(p as i32));
                if a[sig] as i32 == libc::SIGUSR1 && !targets.iter().all(|&p| ours(p)) {
                    a[sig] = libc::SIGURG as u64;
                }
            }
            libc::SYS_ioctl => {
                let req = a[1] & 0xffff;
                if (0x5402..=0x5412).contains(&req)
                    || req == 0x5414
                    || req == 0x5452
                    || req == 0x540e
                {
                    a[1] = 0x5401;
                }
            }
            libc::SYS_timer_create => {
                if !in_scratch(a[1]) && a[1] != 0 {
                    a[1] = e.gen(A::BadPtr);
                }
                if in_scratch(a[1]) {
                    write_u64(a[1], e.rng.next());
                    let sig = e.rng.pick(&[
                        libc::SIGURG,
                        libc::SIGWINCH,
                        libc::SIGALRM,
                        libc::SIGUSR1,
                        0,
                        65,
                    ]) as u64;
                    let notify = e.rng.pick(&[0u64, 1, 4, 7]);
                    write_u64(a[1] + 8, sig | (notify << 32));
                    write_u64(a[1] + 16, e.pid as u64);
                }
            }
            libc::SYS_mmap
            | libc::SYS_munmap
            | libc::SYS_mprotect
            | libc::SYS_madvise
            | libc::SYS_mremap => {
                let fixed = nr != libc::SYS_mmap
                    || a[3] & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) as u64 != 0;
                if fixed && in_arena(a[0]) && a[1] < 1 << 63 {
                    a[1] = a[1].min(e.scratch + ARENA - a[0]);
                }
                // Outside the arena only never-valid addresses (and page
                // 0, one page long: the program may live anywhere above).
                // A huge length from 0 stays for the calls that refuse it
                // whole (munmap's EINVAL, mprotect's ENOMEM at the hole);
                // madvise applies to every mapping it covers, so
                // madvise(0, 2^64 - 4096, MADV_DONTNEED) wiped the worker.
                if fixed && !in_arena(a[0]) && a[0] < 0x0000_8000_0000_0000 {
                    if a[0] == 0 {
                        if a[1] < 1 << 63 || nr == libc::SYS_madvise {
                            a[1] = a[1].min(PAGE);
                        }
                    } else {
                        a[0] = e.scratch;
                    }
                }
                if nr == libc::SYS_mremap {
                    a[2] = a[2].min(ARENA);
                    a[3] &= !2; // no MREMAP_FIXED
                }
            }
            libc::SYS_brk if a[0] != 0 && !in_arena(a[0]) && a[0] < 0x0000_8000_0000_0000 => {
                a[0] = 0;
            }
            _ => {}
        }
    }

    /// Bookkeeping after a call: new fds, closed fds, repairs.
    fn after(&mut self, nr: i64, a: &[u64; 6], r: i64) {
        let e = &mut self.env;
        match nr {
            libc::SYS_open
            | libc::SYS_openat
            | libc::SYS_creat
            | libc::SYS_dup
            | libc::SYS_dup2
            | libc::SYS_dup3
            | libc::SYS_io_uring_setup
            | libc::SYS_fcntl
                if r >= 3 && (nr != libc::SYS_fcntl || a[1] == 0 || a[1] == 1030) =>
            {
                if e.fds.len() < 48 && !e.fds.contains(&(r as i32)) {
                    e.fds.push(r as i32);
                } else if !e.fds.contains(&(r as i32)) {
                    // SAFETY: an fd this call just gave us.
                    unsafe { libc::close(r as i32) };
                }
            }
            libc::SYS_close if r == 0 => {
                e.fds.retain(|&f| f != a[0] as i32);
                e.dirfds.retain(|&f| f != a[0] as i32);
                e.stale.push(a[0] as i32);
                if e.stale.len() > 8 {
                    e.stale.remove(0);
                }
            }
            libc::SYS_mmap if r > 0 => {
                let (lo, hi) = (e.scratch, e.scratch + ARENA);
                if (r as u64) < lo || r as u64 >= hi {
                    self.outside.push((r as u64, a[1]));
                    if self.outside.len() > 16 {
                        let (a0, l0) = self.outside.remove(0);
                        // SAFETY: a mapping a fuzzed mmap returned.
                        unsafe { libc::munmap(a0 as *mut libc::c_void, l0 as usize) };
                    }
                }
                self.repair();
            }
            libc::SYS_munmap
            | libc::SYS_mprotect
            | libc::SYS_madvise
            | libc::SYS_mremap
            | libc::SYS_mmap => self.repair(),
            libc::SYS_chdir => self.chdir_home(),
            libc::SYS_rt_sigprocmask => {
                // SAFETY: empty mask.
                unsafe {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                }
            }
            _ => {}
        }
    }

    /// The fuzzer's own invariants on a return.
    fn check(&self, nr: i64, a: &[u64; 6], r: i64, err: i32) -> Result<(), String> {
        let name = crate::name(nr);
        // mremap to the same length returns the old address unchecked, as
        // Linux does (even a kernel one): that is a result.
        let same_address = nr == libc::SYS_mremap && r as u64 == a[0];
        if r < -1 && !same_address {
            return Err(format!("{name} returned {r}: neither a result nor -errno"));
        }
        if r == -1 && !(1..=133).contains(&err) {
            return Err(format!("{name} failed with errno {err}, outside Linux's errno range (a kernel-internal code leaked?)"));
        }
        let bounded = match nr {
            libc::SYS_read
            | libc::SYS_write
            | libc::SYS_pread64
            | libc::SYS_pwrite64
            | libc::SYS_getdents64 => Some(a[2]),
            libc::SYS_getrandom | libc::SYS_getcwd => Some(a[1]),
            libc::SYS_readlink => Some(a[2]),
            libc::SYS_readlinkat => Some(a[3]),
            libc::SYS_sendfile => Some(a[3]),
            _ => None,
        };
        if let Some(max) = bounded {
            if r > 0 && r as u64 > max {
                return Err(format!(
                    "{name} returned {r}, more than the {max} bytes asked"
                ));
            }
        }
        // SAFETY: getpid.
        if nr == libc::SYS_getpid && r != unsafe { libc::getpid() } as i64 {
            return Err(format!("getpid returned {r}"));
        }
        Ok(())
    }

    /// The kernel must not have written into memory no call was given.
    fn check_canary(&self) -> Result<(), String> {
        let mut r = Rng::new(self.seed ^ 0xca4a);
        for (i, w) in self.canary.iter().enumerate() {
            if *w != r.next() {
                return Err(format!(
                    "canary word {i} changed: memory no call was given was written"
                ));
            }
        }
        if self.env.pid != std::process::id() as i32 {
            return Err("getpid changed".into());
        }
        Ok(())
    }

    /// Fork/exit churn: a child fuzzes a few calls and exits; the worker
    /// waits for it, kills it, or leaves it for later.
    fn churn(&mut self, seq: u64) {
        self.stat(5);
        // SAFETY: fork in a single-threaded process.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            self.child = true;
            // SAFETY: getpid.
            self.env.pid = unsafe { libc::getpid() };
            self.env.children.clear();
            self.env.rng = Rng::new(derive(self.seed, seq));
            arm_tick();
            let n = self.env.rng.below(32);
            let st = match self.run(n) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!(
                        "rsefuzz: FAIL churn child of worker {} (seed {:#x}, at call {seq}): {e}",
                        self.idx, self.seed
                    );
                    3
                }
            };
            // SAFETY: _exit in the child.
            unsafe { libc::_exit(st) };
        }
        if pid < 0 {
            return;
        }
        match self.env.rng.below(3) {
            0 => self.wait(pid),
            1 => {
                // SAFETY: kill our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                self.wait(pid);
            }
            _ => {
                self.env.children.push(pid);
                if self.env.children.len() > 4 {
                    let p = self.env.children.remove(0);
                    // SAFETY: kill our own child.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                    self.wait(p);
                }
            }
        }
    }

    /// Waits for a child, killing it after ~2 s of ticks.
    fn wait(&self, pid: i32) {
        let mut tries = 0;
        loop {
            let mut st = 0;
            // SAFETY: waitpid on our child.
            let r = unsafe { libc::waitpid(pid, &mut st, 0) };
            if r == pid || (r < 0 && errno() != libc::EINTR) {
                return;
            }
            tries += 1;
            if tries == 100 {
                // SAFETY: kill our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    fn reap_all(&mut self) {
        for p in std::mem::take(&mut self.env.children) {
            // SAFETY: kill our own child.
            unsafe { libc::kill(p, libc::SIGKILL) };
            self.wait(p);
        }
        // Anything else (children of fuzzed waits left over).
        // SAFETY: waitpid(-1, WNOHANG).
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    }

    fn signal_sibling(&mut self) {
        self.siblings();
        if let Some(&p) = self
            .env
            .siblings
            .get(self.env.rng.below(self.env.siblings.len() as u64 + 1) as usize)
        {
            let sig = self
                .env
                .rng
                .pick(&[libc::SIGUSR1, libc::SIGCONT, libc::SIGURG, 0]);
            // SAFETY: a harmless signal to a sibling worker.
            unsafe { libc::kill(p, sig) };
            self.stat(6);
        }
    }
}
