//! A signal ends a blocked poll(2) with EINTR even while the pollers'
//! queue is woken again and again. The poller watches many descriptors
//! (a listening TCP socket, 900 times, so each of its looks takes a
//! while), pinned to one CPU; on up to two
//! others, processes keep writing to an eventfd, each write of which
//! wakes every poller of RSE OS. One SIGUSR1 must end the poll at once, not
//! only when the noise stops.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::{check, errname, fork, wait};

extern "C" fn on_usr1(_: i32) {}

/// Descriptors the poller watches (all the same empty pipe): under the
/// usual RLIMIT_NOFILE of 1024.
const FDS: usize = 900;
/// How long the noise goes on at most after a signal.
const NOISE_AFTER: Duration = Duration::from_secs(5);
/// Polls ended by a signal each.
const ROUNDS: u32 = 15;

/// The words the three processes share.
struct Shared {
    /// The poller is about to call its poll number `ready - 1`.
    ready: AtomicU32,
    /// The noise has started.
    noisy: AtomicU32,
    /// Tells the noise to stop.
    stop: AtomicU32,
    /// Polls the poller has ended with EINTR.
    done: AtomicU32,
    /// A poll's result + 2 if it was not EINTR (0 while all were), its errno.
    ret: AtomicU32,
    errno: AtomicU32,
    /// Monotonic ns when the last poll returned.
    at: AtomicU64,
    /// eventfd writes the noise made.
    trips: AtomicU64,
}

fn now_ns() -> u64 {
    crate::util::clock_ns(libc::CLOCK_MONOTONIC)
}

pub fn run(_args: &[String]) -> Result<(), String> {
    // SAFETY: plain call.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if cpus < 2 {
        crate::say!("ok: skipped, one CPU (the noise needs a CPU of its own)");
        return Ok(());
    }
    let page = crate::util::mmap_shared(4096).map_err(errname)?;
    // SAFETY: a live zeroed shared page, larger than Shared (atomics only).
    let sh = unsafe { &*(page as *const Shared) };
    let r = listener()?;
    // No SA_RESTART: the poll ends with EINTR.
    crate::util::handle(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t, 0)?;

    // SAFETY: plain call.
    let efd = unsafe { libc::eventfd(0, 0) };
    if efd < 0 {
        return Err(format!("eventfd: {}", errname(crate::util::errno())));
    }
    let mut noise = Vec::new();
    for cpu in 1..(cpus as usize).min(3) {
        let pid = fork()?;
        if pid == 0 {
            let _ = crate::util::pin(0, cpu);
            let t = Instant::now();
            let one = 1u64;
            sh.noisy.fetch_add(1, Ordering::SeqCst);
            while sh.stop.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(30) {
                // SAFETY: eight bytes to our own eventfd (each write wakes
                // its pollers).
                unsafe { libc::write(efd, (&one as *const u64).cast(), 8) };
                sh.trips.fetch_add(1, Ordering::Relaxed);
            }
            crate::util::child_exit(0);
        }
        noise.push(pid);
    }
    let poller = fork()?;
    if poller == 0 {
        let _ = crate::util::pin(0, 0);
        let mut fds = vec![
            libc::pollfd {
                fd: r,
                events: libc::POLLIN,
                revents: 0,
            };
            FDS
        ];
        for i in 0..ROUNDS {
            sh.ready.store(i + 1, Ordering::SeqCst);
            // SAFETY: FDS valid pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), FDS as libc::nfds_t, 60_000) };
            sh.at.store(now_ns(), Ordering::SeqCst);
            if n != -1 || crate::util::errno() != libc::EINTR {
                sh.errno
                    .store(crate::util::errno() as u32, Ordering::SeqCst);
                sh.ret.store((n + 2) as u32, Ordering::SeqCst);
                crate::util::child_exit(1);
            }
            sh.done.store(i + 1, Ordering::SeqCst);
        }
        crate::util::child_exit(0);
    }
    let wait_for = |word: &AtomicU32, v: u32, limit: Duration| {
        let t = Instant::now();
        while word.load(Ordering::SeqCst) < v && sh.ret.load(Ordering::SeqCst) == 0 {
            if t.elapsed() > limit {
                return false;
            }
            crate::util::sleep_ms(1);
        }
        true
    };
    let mut ms = Vec::new();
    let mut stuck = None;
    if wait_for(&sh.noisy, noise.len() as u32, Duration::from_secs(20)) {
        for i in 0..ROUNDS {
            if !wait_for(&sh.ready, i + 1, Duration::from_secs(20)) {
                break;
            }
            // Well inside the poll by then.
            crate::util::sleep_ms(30);
            let sent = now_ns();
            // SAFETY: signalling our own child.
            unsafe { libc::kill(poller, libc::SIGUSR1) };
            if !wait_for(&sh.done, i + 1, NOISE_AFTER) {
                if sh.ret.load(Ordering::SeqCst) == 0 {
                    stuck = Some(i);
                }
                break;
            }
            ms.push(sh.at.load(Ordering::SeqCst).saturating_sub(sent) as f64 / 1e6);
        }
    }
    sh.stop.store(1, Ordering::SeqCst);
    if stuck.is_some() {
        // Does it end once the noise stops?
        let t = Instant::now();
        while sh.done.load(Ordering::SeqCst) == stuck.unwrap_or(0)
            && t.elapsed() < Duration::from_secs(10)
        {
            crate::util::sleep_ms(10);
        }
    }
    // SAFETY: ending our own child.
    unsafe { libc::kill(poller, libc::SIGKILL) };
    wait(poller)?;
    for pid in noise {
        wait(pid)?;
    }
    let trips = sh.trips.load(Ordering::Relaxed);
    let ret = sh.ret.load(Ordering::SeqCst);
    check(
        ret == 0,
        format_args!(
            "each poll of {FDS} descriptors is ended by SIGUSR1 with EINTR{}",
            if ret == 0 {
                String::new()
            } else {
                format!(
                    " (one returned {}, {})",
                    ret as i64 - 2,
                    errname(sh.errno.load(Ordering::SeqCst) as i32)
                )
            }
        ),
    )?;
    if let Some(i) = stuck {
        let after = sh.done.load(Ordering::SeqCst) > i;
        return check(
            false,
            format_args!(
                "poll {i}: no EINTR {} s after the signal while the noise went on ({trips} eventfd writes); {}",
                NOISE_AFTER.as_secs(),
                if after { "it came once the noise stopped" } else { "none after the noise stopped either" }
            ),
        );
    }
    check(
        ms.len() == ROUNDS as usize,
        format_args!("{} of {ROUNDS} rounds ran", ms.len()),
    )?;
    // How fast is a benchmark's question, not this test's (a loaded TCG
    // host takes milliseconds); it says so for the record.
    ms.sort_by(f64::total_cmp);
    crate::say!(
        "poll_eintr: kill(2) to EINTR with the noise going on ({trips} eventfd writes): median {:.1} ms, fastest {:.1} ms, slowest {:.1} ms",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1]
    );
    Ok(())
}

/// A TCP socket listening on the loopback with a long backlog: nothing
/// connects, and polling it is not cheap (RSE OS looks at each socket
/// of its backlog), so the poller's look over its descriptors takes long
/// enough for the noise to wake the queue during it.
fn listener() -> Result<i32, String> {
    // SAFETY: plain calls on a socket we own; a valid sockaddr_in.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return Err(format!("socket: {}", errname(crate::util::errno())));
        }
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&a as *const libc::sockaddr_in).cast(), len) != 0
            || libc::listen(fd, 128) != 0
        {
            return Err(format!("bind/listen: {}", errname(crate::util::errno())));
        }
        Ok(fd)
    }
}
