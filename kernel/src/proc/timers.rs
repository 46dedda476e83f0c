//! Timers that end in a signal: alarm(2)/setitimer(2)'s ITIMER_REAL and
//! POSIX timers (timer_create(2)). All armed timers of all processes sit
//! in one table, scanned only when the earliest deadline is due (the
//! tick's deferred work), like the sleepers in syscall/time.rs. A process
//! holds at most [`MAX_PER_PROCESS`] timers (Linux bounds them by
//! RLIMIT_SIGPENDING), so the table is bounded by the process limit.

use abi::{Errno, KResult};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use spin::Mutex;

use super::sched::Deadlines;
use super::signal::{self, SigInfo};
use super::{Pid, Process};

/// Timers one process may create (EAGAIN beyond).
pub const MAX_PER_PROCESS: usize = 256;
/// The id of a process's ITIMER_REAL (POSIX timer ids are ≥ 0).
const ITIMER_REAL_ID: i32 = -1;
const SIGALRM: u32 = 14;
/// si_code of a POSIX timer's signal.
const SI_TIMER: i32 = -2;
/// si_code of ITIMER_REAL's SIGALRM (the kernel sent it).
const SI_KERNEL: i32 = 0x80;

/// What a timer does at expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// Nothing (SIGEV_NONE): only timer_gettime sees it.
    None,
    /// `signo` to the process (any thread that takes it).
    Process(u32),
    /// `signo` to one thread (SIGEV_THREAD_ID).
    Thread(u32),
}

struct Timer {
    tgid: Pid,
    id: i32,
    notify: Notify,
    /// Who is signalled: the thread, or any thread of the process.
    target: Weak<Process>,
    /// sigev_value, passed in si_value.
    value: u64,
    /// The clock absolute settings are read on (REALTIME or a monotonic
    /// one): they become monotonic deadlines when set.
    clock: u64,
    /// Next expiry (monotonic ns); 0 when disarmed.
    deadline: u64,
    /// Period (ns); 0 for a one-shot.
    interval: u64,
    /// Expiries since the last signal was sent, counted while it waits.
    overrun: u32,
    /// The count latched when the last signal was taken (timer_getoverrun
    /// and si_overrun), as Linux latches it at dequeue.
    overrun_last: u32,
}

static TIMERS: Mutex<Vec<Timer>> = Mutex::new(Vec::new());
static DUE: Deadlines = Deadlines::new();

/// A timer's current setting: (time to the next expiry, interval), ns.
pub type Setting = (u64, u64);

fn setting(t: &Timer, now: u64) -> Setting {
    let left = if t.deadline == 0 {
        0
    } else {
        t.deadline.saturating_sub(now).max(1)
    };
    (left, t.interval)
}

/// Creates a POSIX timer for `me`'s process; its id.
pub fn create(
    me: &Arc<Process>,
    clock: u64,
    notify: Notify,
    target: &Arc<Process>,
    value: Option<u64>,
) -> KResult<i32> {
    let mut all = TIMERS.lock();
    let mine = all.iter().filter(|t| t.tgid == me.tgid);
    if mine.clone().count() >= MAX_PER_PROCESS {
        return Err(Errno::EAGAIN);
    }
    let id = (0..)
        .find(|i| !all.iter().any(|t| t.tgid == me.tgid && t.id == *i))
        .ok_or(Errno::EAGAIN)?;
    all.try_reserve(1).map_err(|_| Errno::EAGAIN)?;
    // Without a sigevent, si_value is the timer's id.
    all.push(Timer {
        clock,
        ..Timer::disarmed(me.tgid, id, notify, target, value.unwrap_or(id as u64))
    });
    Ok(id)
}

/// Arms (`first` ns from now, or at `first` if `absolute`; 0 disarms)
/// timer `id` of process `tgid`; the old setting. ITIMER_REAL is created
/// on first use.
pub fn set(tgid: Pid, id: i32, first: u64, absolute: bool, interval: u64) -> KResult<Setting> {
    let now = hal::time::now_ns();
    let mut all = TIMERS.lock();
    let i = match all.iter().position(|t| t.tgid == tgid && t.id == id) {
        Some(i) => i,
        None if id == ITIMER_REAL_ID => {
            let leader = super::lookup(tgid).ok_or(Errno::ESRCH)?;
            all.try_reserve(1).map_err(|_| Errno::EAGAIN)?;
            all.push(Timer::disarmed(
                tgid,
                id,
                Notify::Process(SIGALRM),
                &leader,
                0,
            ));
            all.len() - 1
        }
        None => return Err(Errno::EINVAL),
    };
    let t = &mut all[i];
    let old = setting(t, now);
    t.interval = interval;
    t.overrun = 0;
    t.deadline = match (first, absolute) {
        (0, _) => 0,
        // An absolute time already past fires at the next tick.
        (at, true) => crate::clock::abs_to_monotonic(t.clock, at).max(1),
        (after, false) => now.saturating_add(after),
    };
    if t.deadline != 0 {
        DUE.note(t.deadline);
    }
    Ok(old)
}

/// Timer `id`'s setting (ITIMER_REAL: disarmed if never set).
pub fn get(tgid: Pid, id: i32) -> KResult<Setting> {
    let all = TIMERS.lock();
    match all.iter().find(|t| t.tgid == tgid && t.id == id) {
        Some(t) => Ok(setting(t, hal::time::now_ns())),
        None if id == ITIMER_REAL_ID => Ok((0, 0)),
        None => Err(Errno::EINVAL),
    }
}

/// timer_getoverrun(2).
pub fn overrun(tgid: Pid, id: i32) -> KResult<u32> {
    let all = TIMERS.lock();
    let t = all.iter().find(|t| t.tgid == tgid && t.id == id && id >= 0);
    t.map(|t| t.overrun_last).ok_or(Errno::EINVAL)
}

/// timer_delete(2).
pub fn delete(tgid: Pid, id: i32) -> KResult<()> {
    let mut all = TIMERS.lock();
    let i = all
        .iter()
        .position(|t| t.tgid == tgid && t.id == id && id >= 0)
        .ok_or(Errno::EINVAL)?;
    all.swap_remove(i);
    Ok(())
}

/// A POSIX timer's signal was taken (delivered or sigwaited): latches and
/// returns the overrun count for its siginfo and timer_getoverrun.
fn taken(tgid: Pid, id: i32) -> u32 {
    let mut all = TIMERS.lock();
    match all.iter_mut().find(|t| t.tgid == tgid && t.id == id) {
        Some(t) => {
            t.overrun_last = core::mem::take(&mut t.overrun);
            t.overrun_last
        }
        None => 0,
    }
}

/// A signal's siginfo as it is taken: a POSIX timer's gets its overrun
/// count latched (si_overrun).
pub fn latch(tgid: Pid, mut info: SigInfo) -> SigInfo {
    if info.code == SI_TIMER {
        info.uid = taken(tgid, info.pid as i32);
    }
    info
}

/// The ITIMER_REAL id, for alarm/setitimer/getitimer.
pub const fn itimer_real() -> i32 {
    ITIMER_REAL_ID
}

/// execve: POSIX timers go, ITIMER_REAL stays (as on Linux).
pub fn on_exec(tgid: Pid) {
    TIMERS
        .lock()
        .retain(|t| t.tgid != tgid || t.id == ITIMER_REAL_ID);
}

/// The process has ended: all its timers go.
pub fn on_exit(tgid: Pid) {
    TIMERS.lock().retain(|t| t.tgid != tgid);
}

/// From the tick's deferred work: fires the timers that are due, then
/// notes the next deadline.
pub fn expire(now: u64) {
    if !DUE.take_due(now) {
        return;
    }
    // Signals are sent after the table's lock is dropped.
    let mut fire: Vec<(Weak<Process>, Notify, SigInfo)> = Vec::new();
    {
        let mut all = TIMERS.lock();
        for t in all.iter_mut().filter(|t| t.deadline != 0) {
            if t.deadline <= now {
                if let Some(f) = t.fire(now) {
                    if fire.try_reserve(1).is_ok() {
                        fire.push(f);
                    }
                }
            }
            if t.deadline != 0 {
                DUE.note(t.deadline);
            }
        }
    }
    for (target, notify, info) in fire {
        let Some(p) = target.upgrade() else { continue };
        match notify {
            Notify::Process(sig) => signal::send_process(&p, sig, info),
            Notify::Thread(sig) if !p.is_zombie() => signal::send_info(&p, sig, info),
            _ => {}
        }
    }
}

impl Timer {
    /// A timer of process `tgid` that has not been set yet.
    fn disarmed(tgid: Pid, id: i32, notify: Notify, target: &Arc<Process>, value: u64) -> Timer {
        Timer {
            tgid,
            id,
            notify,
            target: Arc::downgrade(target),
            value,
            clock: 1,
            deadline: 0,
            interval: 0,
            overrun: 0,
            overrun_last: 0,
        }
    }

    /// An expiry at `now`: the next deadline, and the signal to send, if
    /// one is due. While the timer's last signal is still pending an
    /// expiry only counts as an overrun (Linux queues it once).
    fn fire(&mut self, now: u64) -> Option<(Weak<Process>, Notify, SigInfo)> {
        let missed = match (now - self.deadline).checked_div(self.interval) {
            None => {
                self.deadline = 0;
                0
            }
            Some(n) => {
                self.deadline = self
                    .deadline
                    .saturating_add((n + 1).saturating_mul(self.interval));
                n
            }
        };
        let missed = u32::try_from(missed).unwrap_or(i32::MAX as u32);
        let sig = match self.notify {
            Notify::None => return None,
            Notify::Process(s) | Notify::Thread(s) => s,
        };
        let target = self.target.upgrade()?;
        let pending = target.group.shared_sig.lock().pending & signal::bit(sig) != 0
            || core::iter::once(target.clone())
                .chain(target.group.snapshot())
                .any(|t| t.sig.lock().pending & signal::bit(sig) != 0);
        if pending {
            self.overrun = self.overrun.saturating_add(missed).saturating_add(1);
            return None;
        }
        self.overrun = self.overrun.saturating_add(missed);
        let info = if self.id == ITIMER_REAL_ID {
            SigInfo::sent(SI_KERNEL, 0)
        } else {
            SigInfo {
                code: SI_TIMER,
                pid: self.id as u32,
                uid: self.overrun,
                value: self.value,
            }
        };
        Some((self.target.clone(), self.notify, info))
    }
}
