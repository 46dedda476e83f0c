//! The side a process moves to: the listener that takes moves, the guest
//! process built from the copy, its forwarded system calls, and its way
//! home.
//!
//! A guest is a process of this machine (a local pid, its own kernel
//! stack and address space) with no files, no parent and no children
//! here: everything but its computation is its home's. It answers
//! getpid, gettid and getppid with its home's ids (also on the light
//! path) and runs a few calls that need nothing of the home here (the
//! clocks, sched_yield, getrandom, getcpu); every other call goes home.

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use hal::idt::TrapFrame;
use linux_raw_sys::general as nr;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use spin::Mutex;

use super::chan::{self, Chan, WQ};
use super::image::{self, Cpu, Malformed, Mirror, Reader, Writer};
use super::{kind, Guest, OwnedFrame, ATTENTION, GUESTS, N_GUESTS, STATS};
use crate::net::stack;
use crate::proc::{Process, Relations};

/// Listening sockets (smoltcp has no accept queue: one per connection
/// being accepted).
const LISTENERS: usize = 2;
/// Moves being received at once; more are refused.
const INCOMING_MAX: usize = 4;
/// How long a move may take to arrive.
const INCOMING_NS: u64 = 60_000_000_000;

static LISTEN: Mutex<Vec<SocketHandle>> = Mutex::new(Vec::new());
static INCOMING: Mutex<Vec<(Chan, u64)>> = Mutex::new(Vec::new());
/// Local pids of guests, until their zombies are reaped.
static PIDS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn listener() -> tcp::Socket<'static> {
    let mut s = chan::tcp_socket();
    // A fresh socket listens on a valid port: this cannot fail.
    let _ = s.listen(chan::PORT);
    s
}

/// Opens the listeners.
pub fn listen() -> bool {
    let hs = stack::with(|_, set| (0..LISTENERS).map(|_| set.add(listener())).collect());
    match hs {
        Some(hs) => {
            *LISTEN.lock() = hs;
            true
        }
        None => false,
    }
}

/// CPU 0's boundary: new connections, moves that arrived, and what homes
/// said to their guests.
pub fn service() {
    let now = hal::time::now_ns();
    // Connections the listeners took become incoming moves.
    let mut fresh = Vec::new();
    {
        let mut l = LISTEN.lock();
        let busy = INCOMING.lock().len();
        stack::with_quiet(|_, set| {
            for h in l.iter_mut() {
                match set.get::<tcp::Socket>(*h).state() {
                    tcp::State::Listen | tcp::State::SynReceived => {}
                    tcp::State::Closed => {
                        let _ = set.get_mut::<tcp::Socket>(*h).listen(chan::PORT);
                    }
                    // Established, or already past it (a peer that sent
                    // its bytes and closed its side before this look).
                    _ if busy + fresh.len() >= INCOMING_MAX => {
                        set.get_mut::<tcp::Socket>(*h).abort();
                    }
                    _ => {
                        fresh.push(*h);
                        *h = set.add(listener());
                    }
                }
            }
        });
    }
    INCOMING
        .lock()
        .extend(fresh.into_iter().map(|h| (Chan::accepted(h), now)));
    receive_moves(now);
    // What homes said to guests that are not waiting for an answer.
    let guests: Vec<Arc<Guest>> = GUESTS.lock().values().cloned().collect();
    for g in guests {
        let Some(mut c) = g.chan.try_lock() else {
            continue;
        };
        // Looked at with the channel held: a guest marks itself in a
        // call before it takes the channel to send, so no answer can be
        // on its way now.
        if g.in_call.load(Ordering::Acquire) {
            continue;
        }
        let Some(ch) = c.as_mut() else { continue };
        match ch.try_recv() {
            Ok(None) => {}
            Ok(Some((kind::RECALL, _))) => recall(&g),
            Ok(Some((kind::END, _))) => {
                drop(c);
                end(&g);
            }
            Ok(Some(_)) => {
                STATS.unexpected.fetch_add(1, Ordering::Relaxed);
                drop(c);
                end(&g);
            }
            Err(_) => {
                drop(c);
                end(&g);
            }
        }
    }
}

/// Reads the moves being received; starts those that arrived whole.
pub fn receive_moves(now: u64) {
    let mut inc = {
        let Some(mut i) = INCOMING.try_lock() else {
            return;
        };
        if i.is_empty() {
            return;
        }
        core::mem::take(&mut *i)
    };
    let mut keep = Vec::new();
    for (mut c, since) in inc.drain(..) {
        match c.try_recv() {
            Ok(Some((kind::MOVE, p))) => match build(&p) {
                Ok((proc_, g, torus)) => start(proc_, g, c, torus),
                Err(e) => {
                    crate::klog!("cluster: a move from another machine was refused: {e:?}");
                    let errno = 0u64.wrapping_sub(e.as_return()) as u8;
                    let _ = c.send_now(kind::MOVE_ERR, &[errno]);
                    c.close();
                }
            },
            Ok(Some(_)) => {
                STATS.unexpected.fetch_add(1, Ordering::Relaxed);
                c.abort();
            }
            Ok(None) if now.saturating_sub(since) < INCOMING_NS => keep.push((c, since)),
            _ => c.abort(),
        }
    }
    INCOMING.lock().extend(keep);
}

fn recall(g: &Guest) {
    if !g.recall.swap(true, Ordering::AcqRel) {
        ATTENTION.fetch_add(1, Ordering::AcqRel);
    }
    if let Some(p) = crate::proc::lookup(g.local) {
        crate::proc::sched::notify(&p, crate::proc::work::SIGNALS);
    }
}

/// The guest stops (its home said so, or is gone): killed here.
pub fn end(g: &Guest) {
    if g.ended.swap(true, Ordering::AcqRel) {
        return;
    }
    if let Some(p) = crate::proc::lookup(g.local) {
        crate::proc::signal::send(&p, crate::proc::signal::SIGKILL);
    }
    WQ.wake_all();
}

/// The shift that makes this machine's monotonic clock read `home_now`
/// now, or `old` if that is later (a guest's clock never goes back).
fn shift_to(home_now: u64, old: i64) -> i64 {
    let here = hal::time::now_ns();
    let s = i64::try_from(i128::from(home_now) - i128::from(here)).unwrap_or(0);
    s.max(old)
}

/// Builds the guest process from a move (not yet running).
fn build(p: &[u8]) -> Result<(Arc<Process>, Guest, Option<usize>), abi::Errno> {
    use abi::Errno;
    let bad = |_: Malformed| {
        STATS.corrupt.fetch_add(1, Ordering::Relaxed);
        Errno::EINVAL
    };
    let mut r = Reader::new(p);
    let home = usize::from(r.u8().map_err(bad)?);
    let home_pid = r.u32().map_err(bad)?;
    let home_ppid = r.u32().map_err(bad)?;
    let torus = r.u8().map_err(bad)?;
    let mask = r.u64().map_err(bad)?;
    let home_now = r.u64().map_err(bad)?;
    let comm = r.bytes(64).map_err(bad)?.to_vec();
    let cpu = Cpu::decode(&mut r).map_err(bad)?;
    let (map, brk_start, brk) = image::decode_vmas(&mut r).map_err(bad)?;
    let n = r.u32().map_err(bad)?;
    let here = crate::proc::torus::this_id();
    let mut m = crate::mm::Mm::new(here)?;
    m.vmas = map;
    m.brk_start = brk_start;
    m.brk = brk;
    let shift = shift_to(home_now, 0);
    let vvar = crate::vdso::shifted_vvar(shift).map(OwnedFrame);
    let mut mirror = Mirror::default();
    mirror.vvar = vvar.as_ref().map(|f| f.0);
    mirror.apply(&mut m, &mut r, n).map_err(bad)?;
    let mut frame = hal::context::user_frame(0, 0);
    cpu.load_into(&mut frame);
    let fpu = hal::percpu::FpuArea::initial();
    fpu.load(&cpu.fpu, true);
    let sig = crate::proc::signal::SignalState {
        mask: mask & !crate::proc::signal::UNBLOCKABLE,
        ..Default::default()
    };
    let comm = alloc::string::String::from_utf8_lossy(&comm).into_owned();
    let proc_ = Process::spawn(crate::proc::NewProcess {
        oom_score_adj: 0,
        frame,
        fpu,
        fs_base: cpu.fs_base,
        gs_base: cpu.gs_base,
        mm: crate::mm::shared::SharedMm::new(m),
        files: Arc::new(Mutex::new(crate::fs::fdtable::FdTable::new())),
        fs: Arc::new(Mutex::new(crate::proc::FsContext {
            cwd: crate::fs::cwd::Cwd::Tmpfs(vfs::ROOT_INO),
            umask: 0o022,
        })),
        group: None,
        rel: Relations {
            ppid: 0,
            pgid: 0,
            sid: 0,
            children: Vec::new(),
        },
        sig,
        limits: crate::proc::limits::Limits::default(),
        params: runq::Params::DEFAULT,
        affinity: u64::MAX,
        cred: Arc::new(crate::proc::cred::Cred::root()),
        no_new_privs: true,
        info: crate::proc::Info {
            comm: comm.clone(),
            cmdline: comm.into_bytes(),
            exe: Vec::new(),
            torus: here,
            cell: (0, 0, 0),
            start_ns: hal::time::now_ns(),
        },
    })?;
    proc_.present_as(home_pid, home_ppid);
    let g = Guest {
        local: proc_.pid,
        home,
        home_pid,
        home_ppid,
        chan: Mutex::new(None),
        recall: AtomicBool::new(false),
        ended: AtomicBool::new(false),
        in_call: AtomicBool::new(false),
        mirror: Mutex::new(mirror),
        syscalls: AtomicU64::new(0),
        clock_shift: AtomicI64::new(shift),
        vvar,
    };
    let torus = (torus != 0xff).then_some(usize::from(torus));
    Ok((proc_, g, torus))
}

/// Registers the guest and lets it run.
fn start(p: Arc<Process>, g: Guest, mut c: Chan, torus: Option<usize>) {
    let pid = p.pid;
    let acked = c.send_now(kind::MOVE_OK, &pid.to_le_bytes());
    let (home, home_pid) = (g.home, g.home_pid);
    if acked {
        *g.chan.lock() = Some(c);
    } else {
        c.close();
    }
    let g = Arc::new(g);
    PIDS.lock().insert(pid);
    GUESTS.lock().insert(pid, g.clone());
    N_GUESTS.fetch_add(1, Ordering::AcqRel);
    STATS.moves_in.fetch_add(1, Ordering::Relaxed);
    crate::proc::sched::enqueue_new(p.clone());
    if let Some(t) = torus.filter(|&t| t < crate::proc::torus::count()) {
        crate::proc::sched::set_affinity(&p, 1 << t);
    }
    if acked {
        crate::klog!("cluster: process {home_pid} of machine {home} runs here as pid {pid}");
    } else {
        // Its home will not know it runs: it ends at once.
        end(&g);
    }
}

/// Whether `pid` was a guest; its zombie is then reaped by the kernel.
pub fn ended_pid(pid: u32) -> bool {
    PIDS.lock().remove(&pid)
}

/// A guest's process exits: its connection closes (its home, unless it
/// already knew, then goes on from the process's last call).
pub fn exited(g: &Guest) {
    crate::klog!(
        "cluster: pid {} (process {} of machine {}) ended here after {} system calls sent home",
        g.local,
        g.home_pid,
        g.home,
        g.syscalls.load(Ordering::Relaxed)
    );
    let c = g.chan.lock().take();
    if let Some(c) = c {
        c.close();
    }
}

/// Calls a guest answers here.
fn local(n: u64) -> bool {
    matches!(
        n as u32,
        nr::__NR_sched_yield
            | nr::__NR_clock_gettime
            | nr::__NR_clock_getres
            | nr::__NR_gettimeofday
            | nr::__NR_time
            | nr::__NR_getrandom
            | nr::__NR_getcpu
    )
}

/// The guest's clock (its CLOCK_MONOTONIC now), registers, FPU state,
/// TLS bases and changed pages.
fn state(g: &Guest, frame: &TrapFrame) -> Writer {
    let me = crate::proc::sched::current();
    let mut w = Writer::new();
    // As the guest's clock_gettime reads it (`clock_gettime_shifted`).
    w.u64(hal::time::now_ns().saturating_add_signed(g.clock_shift.load(Ordering::Acquire)));
    Cpu::of(
        frame,
        hal::percpu::user_fs_base(),
        hal::percpu::user_gs_base(),
        &me.fpu().bytes(),
    )
    .encode(&mut w);
    let mut pages = Writer::new();
    let n = {
        let mm = me.mm();
        let m = mm.lock();
        g.mirror.lock().diff(&m, &mut pages)
    };
    STATS.pages_sent.fetch_add(u64::from(n), Ordering::Relaxed);
    w.u32(n);
    w.0.extend_from_slice(&pages.0);
    w
}

/// Stops the guest for good (its home has the process now, or it died).
/// No reference to the process may be held by the caller (this stack is
/// never unwound).
fn quit(g: &Guest) -> ! {
    g.ended.store(true, Ordering::Release);
    *g.mirror.lock() = Mirror::default();
    crate::proc::exit::exit_group(crate::proc::sched::current(), 0)
}

enum Answer {
    Ret(Vec<u8>),
    End,
}

/// A system call of guest `g` (the current process). False: run it here.
pub fn syscall(g: &Guest, frame: &mut TrapFrame) -> bool {
    let n = frame.rax;
    match n as u32 {
        nr::__NR_getpid | nr::__NR_gettid => {
            frame.rax = u64::from(g.home_pid);
            return true;
        }
        nr::__NR_getppid => {
            frame.rax = u64::from(g.home_ppid);
            return true;
        }
        nr::__NR_clock_gettime => {
            let shift = g.clock_shift.load(Ordering::Acquire);
            frame.rax =
                match crate::syscall::time::clock_gettime_shifted(frame.rdi, frame.rsi, shift) {
                    Ok(v) => v,
                    Err(e) => e.as_return(),
                };
            return true;
        }
        _ if local(n) => return false,
        _ => {}
    }
    g.in_call.store(true, Ordering::Release);
    let w = state(g, frame);
    let sent = g
        .chan
        .lock()
        .as_mut()
        .is_some_and(|c| c.send(kind::SYSCALL, &w.0).is_ok());
    drop(w);
    if !sent {
        quit(g);
    }
    g.syscalls.fetch_add(1, Ordering::Relaxed);
    STATS.forwarded.fetch_add(1, Ordering::Relaxed);
    let ans = WQ.wait_until_uninterruptible(|| {
        if g.ended.load(Ordering::Acquire) {
            return Some(Answer::End);
        }
        let mut c = g.chan.lock();
        let ch = c.as_mut()?;
        loop {
            match ch.try_recv() {
                Ok(None) => return None,
                Ok(Some((kind::RET, p))) => return Some(Answer::Ret(p)),
                Ok(Some((kind::RECALL, _))) => recall(g),
                Ok(Some((kind::END, _))) => return Some(Answer::End),
                Ok(Some(_)) => {
                    STATS.unexpected.fetch_add(1, Ordering::Relaxed);
                    return Some(Answer::End);
                }
                Err(_) => return Some(Answer::End),
            }
        }
    });
    g.in_call.store(false, Ordering::Release);
    match ans {
        Answer::End => quit(g),
        Answer::Ret(p) => {
            if apply_ret(g, frame, &p).is_err() {
                STATS.corrupt.fetch_add(1, Ordering::Relaxed);
                quit(g);
            }
        }
    }
    true
}

fn apply_ret(g: &Guest, frame: &mut TrapFrame, p: &[u8]) -> Result<(), Malformed> {
    let me = crate::proc::sched::current();
    let mut r = Reader::new(p);
    let home_now = r.u64()?;
    let old = g.clock_shift.load(Ordering::Acquire);
    let shift = shift_to(home_now, old);
    if shift != old {
        g.clock_shift.store(shift, Ordering::Release);
        if let Some(f) = &g.vvar {
            // The process is here, in the kernel: nobody reads it now.
            crate::vdso::write_vvar(f.0, shift);
        }
    }
    let cpu = Cpu::decode(&mut r)?;
    let (map, brk_start, brk) = image::decode_vmas(&mut r)?;
    let n = r.u32()?;
    {
        let mm = me.mm();
        let mut m = mm.lock();
        image::mirror_vmas(&mut m, map);
        m.brk_start = brk_start;
        m.brk = brk;
        g.mirror.lock().apply(&mut m, &mut r, n)?;
    }
    cpu.load_into(frame);
    me.fpu().load(&cpu.fpu, true);
    me.set_fs_base(cpu.fs_base);
    me.set_gs_base(cpu.gs_base);
    Ok(())
}

/// The guest's return to user mode with work: recalled, or a signal of
/// its own (a fault): it goes home, where the process goes on (and takes
/// the fault again, as it would have there).
pub fn at_return(g: &Guest, frame: &mut TrapFrame) {
    if g.ended.load(Ordering::Acquire) {
        return; // killed: the signal ends it
    }
    let signalled = crate::proc::sched::with_current(|me| me.sig.lock().pending != 0);
    if !g.recall.load(Ordering::Acquire) && !signalled {
        return;
    }
    let w = state(g, frame);
    if let Some(c) = g.chan.lock().as_mut() {
        let _ = c.send(kind::HOME, &w.0);
    }
    quit(g);
}
