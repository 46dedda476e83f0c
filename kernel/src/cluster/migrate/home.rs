//! The home side: a move, then the deputy that serves the moved
//! process's system calls until it comes back, exits or dies.
//!
//! The deputy is the process's own thread, frozen on its way back to
//! user mode (`at_return`): the trap frame it would return with is the
//! process's registers, its address space is the process's memory as of
//! the last sync, and a call it runs goes through the normal syscall path
//! as the process — files, pipes, the tty, sockets, fork, wait, signals.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use hal::idt::TrapFrame;
use linux_raw_sys::general as nr;
use spin::Mutex;

use super::chan::{self, Chan, ChanErr, WQ};
use super::image::{self, Cpu, Mirror, Reader, Writer};
use super::{kind, Deputy, DEPUTIES, STATS};
use crate::proc::signal::{self, SIGKILL};
use crate::proc::Process;

/// How long the guest machine may take to say the copy runs.
const MOVE_TIMEOUT_NS: u64 = 30_000_000_000;

fn fail(pid: u32, machine: usize, why: &str) {
    STATS.move_failed.fetch_add(1, Ordering::Relaxed);
    crate::klog!("cluster: move of process {pid} to machine {machine} failed: {why}");
}

/// The registers, FPU state and TLS bases of the current process, with
/// `frame` its user registers.
fn cpu_of(me: &Process, frame: &TrapFrame) -> Cpu {
    Cpu::of(
        frame,
        hal::percpu::user_fs_base(),
        hal::percpu::user_gs_base(),
        &me.fpu().bytes(),
    )
}

/// Makes `cpu` the current process's user state.
fn load_cpu(me: &Process, frame: &mut TrapFrame, cpu: &Cpu) {
    cpu.load_into(frame);
    me.fpu().load(&cpu.fpu, true);
    me.set_fs_base(cpu.fs_base);
    me.set_gs_base(cpu.gs_base);
}

fn killed(me: &Process) -> bool {
    me.sig.lock().pending & signal::bit(SIGKILL) != 0 || me.group.exit.lock().is_some()
}

/// Moves the current process to `machine` and serves it from here until
/// it is back (or dead). On any failure before the guest runs, the
/// process simply goes on here.
pub fn run(frame: &mut TrapFrame, machine: usize, torus: Option<usize>) {
    let me = crate::proc::sched::current();
    let pid = me.pid;
    let Some((home, addr)) = super::super::peer(machine) else {
        return fail(pid, machine, "not a machine of the cluster");
    };
    if me.group.live.load(Ordering::Acquire) != 1 {
        return fail(pid, machine, "it has threads");
    }
    let mut mirror = Mirror::default();
    let mut w = Writer::new();
    w.u8(home as u8);
    w.u32(pid);
    w.u32(me.ppid());
    w.u8(torus.map_or(0xff, |t| t as u8));
    w.u64(me.sig.lock().mask);
    // The guest's monotonic clocks keep this machine's time.
    w.u64(hal::time::now_ns());
    w.bytes(me.info.lock().comm.as_bytes());
    cpu_of(&me, frame).encode(&mut w);
    let mm = me.mm();
    let pages = {
        let mut m = mm.lock();
        if !image::mirrorable(&m) {
            drop(m);
            return fail(pid, machine, "it has shared memory");
        }
        image::prefault_files(&mut m);
        image::encode_vmas(&m, &mut w);
        let mut pages = Writer::new();
        let n = mirror.diff(&m, &mut pages);
        STATS.pages_sent.fetch_add(u64::from(n), Ordering::Relaxed);
        w.u32(n);
        w.0.extend_from_slice(&pages.0);
        n
    };
    drop(mm);
    if w.0.len() > chan::MAX_MSG {
        return fail(pid, machine, "its memory is too large to copy at once");
    }
    let Some(mut chan) = Chan::connect(addr) else {
        return fail(pid, machine, "no connection");
    };
    let t0 = hal::time::now_ns();
    if chan.send(kind::MOVE, &w.0).is_err() {
        chan.close();
        return fail(pid, machine, "the connection failed");
    }
    drop(w);
    let deadline = t0 + MOVE_TIMEOUT_NS;
    let got = WQ.wait_until_uninterruptible(|| match chan.try_recv() {
        Ok(Some(m)) => Some(Ok(m)),
        Err(e) => Some(Err(e)),
        Ok(None) if hal::time::now_ns() >= deadline => Some(Err(ChanErr::Closed)),
        Ok(None) => None,
    });
    let remote_pid = match got {
        Ok((kind::MOVE_OK, p)) if p.len() == 4 => u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
        Ok((kind::MOVE_ERR, p)) => {
            chan.close();
            let e = p.first().copied().unwrap_or(0);
            return fail(pid, machine, &alloc::format!("refused (errno {e})"));
        }
        _ => {
            chan.close();
            return fail(pid, machine, "no answer");
        }
    };
    crate::klog!(
        "cluster: process {pid} moved to machine {machine} (pid {remote_pid} there) in {} ms, {} pages",
        (hal::time::now_ns() - t0) / 1_000_000,
        pages
    );
    STATS.moves_out.fetch_add(1, Ordering::Relaxed);
    let dep = Arc::new(Deputy {
        pid,
        machine,
        remote_pid: AtomicU32::new(remote_pid),
        recall: AtomicBool::new(false),
        lost: AtomicBool::new(false),
        closing: AtomicBool::new(false),
        syscalls: AtomicU64::new(0),
        since: t0,
        clock: AtomicU64::new(0),
        chan: Mutex::new(Some(chan)),
    });
    DEPUTIES.lock().insert(pid, dep.clone());
    // No reference to the process is held from here: the calls it makes
    // may end it, and this stack is then never unwound.
    drop(me);
    serve(frame, &dep, &mut mirror);
}

enum Ev {
    Msg(u8, Vec<u8>),
    Broken,
    Lost,
    Killed,
    Recall,
}

/// Ends the deputy: the guest is told to stop (when `end`) and the
/// connection closes.
fn finish(dep: &Deputy, end: bool) {
    DEPUTIES.lock().remove(&dep.pid);
    let chan = dep.chan.lock().take();
    if let Some(mut c) = chan {
        if end {
            let _ = c.send_now(kind::END, &[]);
        }
        c.close();
    }
}

/// The process lost its remote copy (its machine left the view, or the
/// connection broke): it goes on here from its last system call. The
/// deputy's frame and the home's memory are the process as the copy got
/// them with the last answer (or the move), and every effect the process
/// had outside itself went through a call served here, so what the copy
/// did since is done again here, once: nothing it made visible is lost or
/// repeated. The copy, if its machine still runs, can only end: its next
/// call finds the connection closed, or its home gone from the view.
fn resume(dep: &Deputy, why: &str) {
    crate::klog!(
        "cluster: process {} on machine {} lost ({why}); it goes on here from its last system call ({} served)",
        dep.pid,
        dep.machine,
        dep.syscalls.load(Ordering::Relaxed)
    );
    STATS.resumed.fetch_add(1, Ordering::Relaxed);
    finish(dep, true);
    clock_passes(dep);
}

/// The copy sent something this machine cannot read: the home's memory
/// may hold part of it, so no consistent state is left to go on from.
fn die(dep: &Deputy, why: &str) {
    crate::klog!(
        "cluster: process {} on machine {} lost ({why}); killed",
        dep.pid,
        dep.machine
    );
    STATS.killed.fetch_add(1, Ordering::Relaxed);
    finish(dep, true);
    signal::force(&crate::proc::sched::current(), SIGKILL);
}

/// The deputy's loop (see the module doc).
fn serve(frame: &mut TrapFrame, dep: &Arc<Deputy>, mirror: &mut Mirror) {
    let mut recall_sent = false;
    loop {
        let me = crate::proc::sched::current();
        let ev = WQ.wait_until_uninterruptible(|| {
            if dep.lost.load(Ordering::Acquire) {
                return Some(Ev::Lost);
            }
            if killed(&me) {
                return Some(Ev::Killed);
            }
            if !recall_sent && (dep.recall.load(Ordering::Acquire) || me.has_deliverable_signal()) {
                return Some(Ev::Recall);
            }
            let mut c = dep.chan.lock();
            match c.as_mut().map(|c| c.try_recv()) {
                Some(Ok(Some((k, p)))) => {
                    if k == kind::HOME {
                        // The guest is gone by design: the watch must
                        // not take its closed connection for a loss.
                        dep.closing.store(true, Ordering::Release);
                    }
                    Some(Ev::Msg(k, p))
                }
                Some(Ok(None)) => None,
                _ => Some(Ev::Broken),
            }
        });
        match ev {
            Ev::Msg(kind::SYSCALL, p) => {
                drop(me);
                match syscall(frame, dep, mirror, &p) {
                    Ok(Served::Away) => {}
                    Ok(Served::Home) => return,
                    Ok(Served::Unanswered) => return resume(dep, "the answer could not be sent"),
                    Err(()) => return die(dep, "a malformed message"),
                }
            }
            Ev::Lost => return resume(dep, "its machine left the view"),
            Ev::Broken => return resume(dep, "the connection broke"),
            Ev::Killed => {
                STATS.killed.fetch_add(1, Ordering::Relaxed);
                return finish(dep, true);
            }
            Ev::Recall => {
                recall_sent = true;
                let sent = dep
                    .chan
                    .lock()
                    .as_mut()
                    .is_some_and(|c| c.send(kind::RECALL, &[]).is_ok());
                if !sent {
                    return resume(dep, "the connection broke");
                }
            }
            Ev::Msg(kind::HOME, p) => {
                let mut r = Reader::new(&p);
                if come_home(dep, &me, frame, mirror, &mut r).is_err() {
                    STATS.corrupt.fetch_add(1, Ordering::Relaxed);
                    return die(dep, "a malformed message");
                }
                clock_passes(dep);
                STATS.moves_back.fetch_add(1, Ordering::Relaxed);
                crate::klog!(
                    "cluster: process {} is back from machine {}",
                    dep.pid,
                    dep.machine
                );
                return finish(dep, false);
            }
            Ev::Msg(..) => {
                STATS.unexpected.fetch_add(1, Ordering::Relaxed);
                return die(dep, "an unexpected message");
            }
        }
    }
}

/// The longest a process coming home waits for this machine's clock to
/// pass its own: more is not a clock rate apart but a broken clock.
const CLOCK_WAIT_MAX_NS: u64 = 1_000_000_000;

/// Takes in the guest's state (its clock, registers, changed pages) as
/// the process's.
fn come_home(
    dep: &Deputy,
    me: &Process,
    frame: &mut TrapFrame,
    mirror: &mut Mirror,
    r: &mut Reader,
) -> Result<(), image::Malformed> {
    let clock = r.u64()?;
    let cpu = Cpu::decode(r)?;
    let n = r.u32()?;
    let mm = me.mm();
    mirror.apply(&mut mm.lock(), r, n)?;
    load_cpu(me, frame, &cpu);
    dep.clock.store(clock, Ordering::Relaxed);
    Ok(())
}

/// Before the process goes on here: waits until this machine's monotonic
/// clock reads past the process's when its guest last sent its state.
/// Away, its clock is the other machine's plus a shift that follows this
/// one's readings and is only ever raised; but two machines' TSC rates
/// are each calibrated (they differ by their calibration's error, or by
/// `tsc_early_khz`), so a clock that ran faster away is ahead when it
/// comes back. The process goes on only when CLOCK_MONOTONIC here can no
/// longer read earlier than it last did there: a wait of the drift, as
/// Spanner's commit wait.
fn clock_passes(dep: &Deputy) {
    let away_now = dep.clock.load(Ordering::Relaxed);
    let behind = away_now.saturating_sub(hal::time::now_ns());
    if behind == 0 {
        return;
    }
    STATS.clock_waits.fetch_add(1, Ordering::Relaxed);
    let wait = behind.min(CLOCK_WAIT_MAX_NS);
    crate::klog!(
        "cluster: process {} came home {} us ahead of this clock; it waits {} us",
        dep.pid,
        behind / 1000,
        wait / 1000
    );
    let until = hal::time::now_ns() + wait;
    crate::syscall::time::sleep_uninterruptible_until(until);
}

/// Whether syscall `n` must run with the process at home: a new program,
/// a thread or a child sharing its memory, io_uring's shared rings.
fn brings_home(n: u64, flags: u64) -> bool {
    const CLONE_VM: u64 = 0x100;
    match n as u32 {
        nr::__NR_execve | nr::__NR_execveat | nr::__NR_vfork | nr::__NR_clone3 => true,
        nr::__NR_clone => flags & CLONE_VM != 0,
        nr::__NR_io_uring_setup | nr::__NR_io_uring_enter | nr::__NR_io_uring_register => true,
        _ => false,
    }
}

/// What became of a forwarded call once it ran here.
enum Served {
    /// The copy got the answer and goes on.
    Away,
    /// The process goes on here (the copy was told to stop).
    Home,
    /// The answer could not be sent: the copy is lost.
    Unanswered,
}

/// Serves one forwarded call; Err when the message is malformed.
fn syscall(
    frame: &mut TrapFrame,
    dep: &Deputy,
    mirror: &mut Mirror,
    p: &[u8],
) -> Result<Served, ()> {
    let mut r = Reader::new(p);
    // A call served for a process that stays away does not wait for its
    // clock (`clock_passes`): the clock of one that runs fast away stays
    // ahead of this one's for as long as it stays there.
    come_home(dep, &crate::proc::sched::current(), frame, mirror, &mut r).map_err(|_| ())?;
    frame.vector = hal::syscall::SYSCALL_VECTOR;
    frame.error_code = 0;
    dep.syscalls.fetch_add(1, Ordering::Relaxed);
    STATS.served.fetch_add(1, Ordering::Relaxed);
    if brings_home(frame.rax, frame.rdi) {
        finish(dep, true);
        clock_passes(dep);
        STATS.moves_back.fetch_add(1, Ordering::Relaxed);
        crate::klog!(
            "cluster: process {} comes home from machine {} for syscall {}",
            dep.pid,
            dep.machine,
            frame.rax
        );
        crate::syscall::run_for_deputy(frame);
        return Ok(Served::Home);
    }
    // exit and exit_group end here (the exit path tells the guest).
    crate::syscall::run_for_deputy(frame);
    // What the return path would do next: a signal pending now is
    // delivered here, into the memory and registers the guest gets.
    if crate::proc::sched::with_current(|me| me.has_deliverable_signal()) {
        signal::deliver(frame);
    }
    frame.error_code = 0;
    let me = crate::proc::sched::current();
    let mm = me.mm();
    let mut m = mm.lock();
    if dep.recall.load(Ordering::Acquire) || !image::mirrorable(&m) {
        // Its state is all here now: it simply goes on here.
        drop(m);
        finish(dep, true);
        clock_passes(dep);
        STATS.moves_back.fetch_add(1, Ordering::Relaxed);
        crate::klog!(
            "cluster: process {} is back from machine {}",
            dep.pid,
            dep.machine
        );
        return Ok(Served::Home);
    }
    image::prefault_files(&mut m);
    let mut w = Writer::new();
    w.u64(hal::time::now_ns());
    cpu_of(&me, frame).encode(&mut w);
    image::encode_vmas(&m, &mut w);
    let mut pages = Writer::new();
    let n = mirror.diff(&m, &mut pages);
    drop(m);
    STATS.pages_sent.fetch_add(u64::from(n), Ordering::Relaxed);
    w.u32(n);
    w.0.extend_from_slice(&pages.0);
    if w.0.len() > chan::MAX_MSG {
        // More changed than one message holds: it goes on here instead.
        finish(dep, true);
        STATS.moves_back.fetch_add(1, Ordering::Relaxed);
        return Ok(Served::Home);
    }
    let sent = dep
        .chan
        .lock()
        .as_mut()
        .is_some_and(|c| c.send(kind::RET, &w.0).is_ok());
    Ok(if sent {
        Served::Away
    } else {
        Served::Unanswered
    })
}

/// A process of this machine exits: its guest (if it is away) stops.
pub fn on_exit(pid: u32) {
    let d = DEPUTIES.lock().get(&pid).cloned();
    if let Some(d) = d {
        finish(&d, true);
    }
}
