//! Signals: per-process actions, mask and pending set; delivery on the way
//! back to user mode with the Linux x86_64 `rt_sigframe` layout, and
//! `rt_sigreturn`.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;
use hal::idt::TrapFrame;

use super::altstack::{self, AltStack, SS_AUTODISARM, STACK_T_SIZE};
use super::Process;
use crate::uaccess;

pub const SIGINT: u32 = 2;
pub const SIGQUIT: u32 = 3;
pub const SIGILL: u32 = 4;
pub const SIGTRAP: u32 = 5;
pub const SIGABRT: u32 = 6;
pub const SIGBUS: u32 = 7;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
pub const SIGSEGV: u32 = 11;
pub const SIGPIPE: u32 = 13;
pub const SIGCHLD: u32 = 17;
pub const SIGCONT: u32 = 18;
pub const SIGSTOP: u32 = 19;
/// The first real-time signal (as the kernel counts it; glibc keeps two).
pub const SIGRTMIN: u32 = 32;
pub const SIGTSTP: u32 = 20;
pub const SIGTTIN: u32 = 21;
pub const SIGTTOU: u32 = 22;
pub const SIGURG: u32 = 23;
pub const SIGXCPU: u32 = 24;
pub const SIGXFSZ: u32 = 25;
pub const SIGWINCH: u32 = 28;
pub const SIGSYS: u32 = 31;
/// Highest signal number.
pub const NSIG: u32 = 64;

const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
const SA_SIGINFO: u64 = 4;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
const SA_RESTART: u64 = 0x1000_0000;

/// Marks in a syscall frame's `error_code` (0 from the syscall entry)
/// while the syscall's EINTR may still become a restart, with the syscall
/// number in the low bits. Linux's -ERESTARTSYS: restarted unless a
/// handler without SA_RESTART runs.
pub const RESTART_SYS: u64 = 1 << 62;
/// Linux's -ERESTARTNOHAND (pause): restarted only if no handler runs.
pub const RESTART_NOHAND: u64 = 1 << 61;

/// `struct sigaction` as the kernel sees it (x86_64 layout).
#[derive(Clone, Copy, Debug, Default)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// A process's signal state.
#[derive(Clone)]
pub struct SignalState {
    pub actions: [SigAction; NSIG as usize + 1],
    pub mask: u64,
    pub pending: u64,
    /// Fault address to report in siginfo for SIGSEGV/SIGBUS.
    pub fault_addr: u64,
    /// rt_sigsuspend: the mask to put back after the next handler.
    pub restore_mask: Option<u64>,
    /// siginfo of each pending signal.
    pub info: [SigInfo; NSIG as usize + 1],
    /// The alternate stack for SA_ONSTACK handlers.
    pub altstack: AltStack,
    /// The signals rt_sigtimedwait waits for (they are taken, not
    /// delivered, even while blocked): a process-directed one goes here.
    pub waiting: u64,
}

pub fn bit(sig: u32) -> u64 {
    1u64 << (sig - 1)
}

pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [SigAction::default(); NSIG as usize + 1],
            mask: 0,
            pending: 0,
            fault_addr: 0,
            restore_mask: None,
            info: [SigInfo::default(); NSIG as usize + 1],
            altstack: AltStack::default(),
            waiting: 0,
        }
    }
}

impl SignalState {
    /// The lowest pending signal that is not blocked.
    pub fn deliverable(&self) -> Option<u32> {
        let ready = self.pending & !(self.mask & !UNBLOCKABLE);
        (ready != 0).then(|| ready.trailing_zeros() + 1)
    }

    /// Sets a new mask (SIGKILL and SIGSTOP can never be blocked).
    pub fn set_mask(&mut self, m: u64) {
        self.mask = m & !UNBLOCKABLE;
        // Unblocking may make a pending signal deliverable.
        super::work::raise(super::work::SIGNALS);
    }

    /// After execve: handled signals revert to default, ignored stay ignored.
    pub fn reset_for_exec(&mut self) {
        self.altstack = AltStack::default();
        for a in self.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
    }
}

/// What a signal does when its action is SIG_DFL.
#[derive(PartialEq, Eq)]
enum Default_ {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
}

fn default_action(sig: u32) -> Default_ {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH | SIGCONT => Default_::Ignore,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Default_::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => Default_::CoreDump,
        _ => Default_::Terminate,
    }
}

/// Validates a signal number from user space (0 allowed where `zero_ok`).
pub fn check_signo(sig: u64, zero_ok: bool) -> KResult<u32> {
    match sig {
        0 if zero_ok => Ok(0),
        1..=64 => Ok(sig as u32),
        _ => Err(Errno::EINVAL),
    }
}

/// Sends `sig` to `p` with siginfo (si_code, si_pid, si_status): kill(2)
/// sends (SI_USER, sender, 0), a child's exit (CLD_*, child, status).
pub fn send_info(p: &Arc<Process>, sig: u32, info: SigInfo) {
    if sig != 0 {
        let mut s = p.sig.lock();
        // A standard signal already pending keeps its first siginfo.
        if sig < SIGRTMIN && s.pending & bit(sig) != 0 {
            return;
        }
        s.info[sig as usize] = info;
    }
    send(p, sig);
}

/// A process-directed signal (kill, SIGCHLD, the tty's): goes to one
/// thread of `p`'s process that does not block it or waits for it in
/// rt_sigtimedwait (`p` itself first); when every thread blocks it, it
/// waits in the process's shared set, for whichever thread unblocks or
/// waits for it first, as Linux's shared queue. SIGKILL goes to every
/// thread.
pub fn send_process(p: &Arc<Process>, sig: u32, info: SigInfo) {
    if sig == 0 {
        return;
    }
    let threads = p.group.snapshot();
    let live = || {
        core::iter::once(p)
            .chain(threads.iter())
            .filter(|t| !t.is_zombie())
    };
    if sig == SIGKILL {
        for t in live() {
            send_info(t, sig, info);
        }
        return;
    }
    let target = live().find(|t| {
        let s = t.sig.lock();
        s.mask & bit(sig) == 0 || s.waiting & bit(sig) != 0
    });
    match target {
        Some(t) => send_info(t, sig, info),
        // Every thread blocks it: it waits, even if ignored (a blocked
        // signal is never ignored; delivery discards it if it still is).
        None => {
            p.group.shared_sig.lock().add(sig, info);
            wake_signalfd_waiters(p);
        }
    }
}

/// Marks `sig` pending on thread `p` and wakes it so it notices. Ignored signals
/// are dropped at once (as Linux does), except that SIGCHLD to a parent
/// still wakes a waiter through its own path.
pub fn send(p: &Arc<Process>, sig: u32) {
    if sig == 0 {
        return;
    }
    {
        let mut s = p.sig.lock();
        let a = s.actions[sig as usize];
        let ignored = a.handler == SIG_IGN
            || (a.handler == SIG_DFL && default_action(sig) == Default_::Ignore);
        // A blocked signal is never ignored (Linux's sig_ignored): the
        // action may change before it is unblocked, and sigtimedwait or
        // sigpending see it meanwhile.
        if ignored && sig != SIGKILL && s.mask & bit(sig) == 0 {
            return;
        }
        // A standard signal already pending is not queued again, and its
        // sender already woke and interrupted the thread (Linux's
        // legacy_queue): waking it again would only send one more IPI to
        // its CPU, and a kill(2) loop would keep that CPU taking them.
        if sig < SIGRTMIN && s.pending & bit(sig) != 0 {
            return;
        }
        s.pending |= bit(sig);
    }
    super::sched::notify(p, super::work::SIGNALS);
    wake_signalfd_waiters(p);
}

/// A signal was just made pending for thread `p` (or its process): a
/// reader or poller of a signalfd in its process (fs::signalfd) sleeps on
/// the pollers' queue, not as the signal's target, so that queue is woken
/// — but only for a process that has used a signalfd, as Linux wakes only
/// the process's own signalfd queue (sighand->signalfd_wqh): a global
/// wake-up on every kill(2) would send every poller, epoll_wait and
/// io_uring waiter of the system round its loop again. The waiter marks
/// its process before it looks at its pending signals
/// ([`note_signalfd_use`]); with the fences, either that look sees the
/// signal or this sees the mark.
fn wake_signalfd_waiters(p: &Process) {
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    if p.group
        .signalfd_used
        .load(core::sync::atomic::Ordering::SeqCst)
    {
        crate::fs::POLL_WQ.wake_all();
    }
}

/// The current thread is about to look at its pending signals through a
/// signalfd (a read or a poll): from now on, signals to its process wake
/// the pollers' queue.
pub fn note_signalfd_use() {
    use core::sync::atomic::{fence, Ordering};
    super::sched::with_current(|me| {
        if !me.group.signalfd_used.load(Ordering::Relaxed) {
            me.group.signalfd_used.store(true, Ordering::SeqCst);
        }
    });
    fence(Ordering::SeqCst);
}

/// A synchronous fault signal: if the process blocks or ignores it, the
/// default action applies anyway (as Linux's force_sig does).
pub fn force(p: &Arc<Process>, sig: u32) {
    {
        let mut s = p.sig.lock();
        let a = s.actions[sig as usize];
        if a.handler == SIG_IGN || s.mask & bit(sig) != 0 {
            s.actions[sig as usize] = SigAction::default();
            s.mask &= !bit(sig);
        }
        s.pending |= bit(sig);
    }
    super::work::raise(super::work::SIGNALS);
}

/// Delivers pending signals to the current process on its way to user
/// mode: default actions run here (terminate), handlers get a frame.
pub fn deliver(frame: &mut TrapFrame) {
    let me = super::sched::current();
    // A syscall that returned EINTR and may be restarted (its marks, see
    // [`interrupted`]); a fault's frame holds its error code there instead.
    let restart = if frame.vector == hal::syscall::SYSCALL_VECTOR {
        core::mem::take(&mut frame.error_code)
    } else {
        0
    };
    loop {
        let (sig, action, old_mask, (fault_addr, info)) = {
            let mut s = me.sig.lock();
            // The thread's own signals first, then the process's.
            let taken = match s.deliverable() {
                Some(sig) => {
                    s.pending &= !bit(sig);
                    Some((sig, core::mem::take(&mut s.info[sig as usize])))
                }
                None => me.group.shared_sig.lock().take(!(s.mask & !UNBLOCKABLE)),
            };
            let taken = taken.map(|(sig, info)| (sig, super::timers::latch(me.tgid, info)));
            let Some((sig, info)) = taken else {
                // No handler ran (the signal was ignored or stopped us):
                // Linux restarts every interrupted restartable syscall.
                if restart != 0 {
                    restart_syscall(frame, restart);
                }
                return;
            };
            let a = s.actions[sig as usize];
            let saved = s.restore_mask.take().unwrap_or(s.mask);
            (sig, a, saved, (s.fault_addr, info))
        };
        match action.handler {
            SIG_IGN if sig != SIGKILL => continue,
            SIG_DFL => match default_action(sig) {
                Default_::Ignore | Default_::Stop => continue,
                // A fatal signal ends the whole process.
                Default_::Terminate => super::exit::exit_group(me, sig as i32),
                // Linux sets the core-dump bit (0x80) only when a core was
                // written; none is (RLIMIT_CORE is 0 and there is no dumper).
                Default_::CoreDump => super::exit::exit_group(me, sig as i32),
            },
            _ if sig == SIGKILL => super::exit::exit_group(me, sig as i32),
            _ => {
                if restart & RESTART_SYS != 0 && action.flags & SA_RESTART != 0 {
                    restart_syscall(frame, restart);
                }
                if setup_frame(&me, frame, sig, &action, old_mask, fault_addr, info).is_err() {
                    // The user stack is unusable: Linux kills with SIGSEGV.
                    super::exit::exit_group(me, SIGSEGV as i32);
                }
                let mut s = me.sig.lock();
                let mut m = old_mask | action.mask;
                if action.flags & SA_NODEFER == 0 {
                    m |= bit(sig);
                }
                s.set_mask(m);
                if action.flags & SA_RESETHAND != 0 {
                    s.actions[sig as usize] = SigAction::default();
                }
                return;
            }
        }
    }
}

/// Called when syscall `nr` returned EINTR: notes in the frame whether
/// Linux would restart it (signal(7)), for [`deliver`] to decide once it
/// knows whether a handler runs. poll, select, nanosleep, sigsuspend and
/// the like are not listed: they return EINTR whatever the handler.
pub fn interrupted(frame: &mut TrapFrame, nr: u64) {
    use linux_raw_sys::general as n;
    let mark = match nr as u32 {
        n::__NR_read
        | n::__NR_write
        | n::__NR_readv
        | n::__NR_writev
        | n::__NR_pread64
        | n::__NR_pwrite64
        | n::__NR_ioctl
        | n::__NR_open
        | n::__NR_openat
        | n::__NR_creat
        | n::__NR_sendfile
        | n::__NR_fcntl
        | n::__NR_flock
        | n::__NR_accept
        | n::__NR_accept4
        | n::__NR_connect
        | n::__NR_sendto
        | n::__NR_recvfrom
        | n::__NR_sendmsg
        | n::__NR_recvmsg
        | n::__NR_wait4
        | n::__NR_waitid => RESTART_SYS,
        n::__NR_pause => RESTART_NOHAND,
        _ => return,
    };
    frame.error_code = mark | nr;
    super::work::raise(super::work::SIGNALS);
}

/// Makes the frame execute the interrupted syscall again: back over the
/// 2-byte `syscall` instruction, with its number in rax (the arguments are
/// still in their registers).
fn restart_syscall(f: &mut TrapFrame, restart: u64) {
    f.rax = restart & 0xffff_ffff;
    f.rip = f.rip.wrapping_sub(2);
}

// Offsets inside struct rt_sigframe (x86_64).
const UC: u64 = 8;
const UC_MCONTEXT: u64 = UC + 40;
const UC_SIGMASK: u64 = UC_MCONTEXT + 256;
const INFO: u64 = UC_SIGMASK + 8;
const FRAME_SIZE: u64 = INFO + 128;
/// uc_flags bit: the frame's SS field is meaningful.
const UC_SIGCONTEXT_SS: u64 = 0x2;
/// uc_flags bit: restore SS exactly as saved (Linux's UC_STRICT_RESTORE_SS).
const UC_STRICT_RESTORE_SS: u64 = 0x4;

fn setup_frame(
    me: &Process,
    f: &mut TrapFrame,
    sig: u32,
    a: &SigAction,
    old_mask: u64,
    fault_addr: u64,
    info: SigInfo,
) -> KResult<()> {
    if a.flags & SA_RESTORER == 0 {
        return Err(Errno::EFAULT);
    }
    // Below the red zone; an SA_ONSTACK handler moves to the alternate
    // stack unless it is already on it (the frame records the stack as
    // it was).
    let mut sp = f.rsp.wrapping_sub(128);
    let alt = me.sig.lock().altstack;
    if a.flags & SA_ONSTACK != 0 && alt.size != 0 && !alt.contains(f.rsp) {
        sp = alt.sp.wrapping_add(alt.size);
        if alt.flags & SS_AUTODISARM != 0 {
            me.sig.lock().altstack = AltStack::default();
        }
    }
    let fp = fpu_frame(me);
    sp = (sp - fp.len() as u64) & !63;
    let fpstate = sp;
    uaccess::copy_out(fpstate, &fp)?;
    sp = ((sp - FRAME_SIZE) & !15) - 8;
    let mut buf = [0u8; FRAME_SIZE as usize];
    let mut put =
        |off: u64, v: u64| buf[off as usize..off as usize + 8].copy_from_slice(&v.to_le_bytes());
    put(0, a.restorer);
    // Linux's flags for a frame interrupted in 64-bit mode: SS is saved,
    // and comes back exactly as saved.
    put(UC, UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS);
    let regs = [
        f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15, f.rdi, f.rsi, f.rbp, f.rbx, f.rdx,
        f.rax, f.rcx, f.rsp, f.rip, f.rflags,
    ];
    for (i, r) in regs.iter().enumerate() {
        put(UC_MCONTEXT + 8 * i as u64, *r);
    }
    put(UC_MCONTEXT + 144, (f.cs & 0xffff) | ((f.ss & 0xffff) << 48));
    put(UC_MCONTEXT + 152, f.error_code);
    put(UC_MCONTEXT + 160, f.vector);
    put(UC_MCONTEXT + 168, old_mask);
    put(UC_MCONTEXT + 176, fault_addr);
    put(UC_MCONTEXT + 184, fpstate);
    put(UC_SIGMASK, old_mask);
    let uc_stack = (UC + 16) as usize;
    buf[uc_stack..uc_stack + STACK_T_SIZE].copy_from_slice(&alt.to_user(f.rsp));
    buf[INFO as usize..].copy_from_slice(&siginfo(sig, info, fault_addr));
    uaccess::copy_out(sp, &buf)?;
    f.rsp = sp;
    f.rip = a.handler;
    f.rdi = sig as u64;
    f.rsi = sp + INFO;
    f.rdx = sp + UC;
    f.rax = 0;
    f.rflags &= !(1 << 10); // DF clear, as the ABI requires at function entry
                            // The handler runs as 64-bit code whatever segments were interrupted
                            // (they are in the frame for rt_sigreturn).
    f.cs = hal::gdt::USER_CS as u64;
    f.ss = hal::gdt::USER_DS as u64;
    Ok(())
}

/// What a `siginfo_t` says besides the signal number: si_code, then the
/// union's first words, whose meaning depends on the sender (kill: pid
/// and uid; SIGCHLD: pid, uid and status; a POSIX timer: timer id,
/// overrun and sigev_value). A fault's si_addr is kept apart
/// (`fault_addr`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub code: i32,
    /// si_pid, or si_timerid.
    pub pid: u32,
    /// si_uid, or si_overrun.
    pub uid: u32,
    /// si_status, or si_value.
    pub value: u64,
}

impl SigInfo {
    /// kill(2) and friends: SI_USER, SI_TKILL, SI_KERNEL … and the sender.
    pub const fn sent(code: i32, pid: u32) -> SigInfo {
        SigInfo {
            code,
            pid,
            uid: 0,
            value: 0,
        }
    }

    /// SIGCHLD: CLD_* with the child and its status.
    pub const fn child(code: i32, pid: u32, status: i32) -> SigInfo {
        SigInfo {
            code,
            pid,
            uid: 0,
            value: status as u32 as u64,
        }
    }
}

/// A `siginfo_t` (128 bytes): si_signo, si_errno, si_code, then si_addr
/// for a fault (si_code > 0), or the union's words of `info`.
pub fn siginfo(sig: u32, info: SigInfo, fault_addr: u64) -> [u8; 128] {
    let mut b = [0u8; 128];
    b[..4].copy_from_slice(&sig.to_le_bytes());
    b[8..12].copy_from_slice(&info.code.to_le_bytes());
    if matches!(sig, SIGSEGV | SIGBUS | SIGILL | SIGFPE) && info.code > 0 {
        b[16..24].copy_from_slice(&fault_addr.to_le_bytes());
    } else {
        b[16..20].copy_from_slice(&info.pid.to_le_bytes());
        b[20..24].copy_from_slice(&info.uid.to_le_bytes());
        b[24..32].copy_from_slice(&info.value.to_le_bytes());
    }
    b
}

/// Linux's markers of an XSAVE signal frame (asm/sigcontext.h): magic1
/// in the legacy area's software-reserved bytes, magic2 right after the
/// XSAVE state.
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Where `struct _fpx_sw_bytes` sits in the 512-byte legacy area.
const SW_BYTES: usize = 464;

/// The fpstate a signal frame carries: the FXSAVE area, or (XSAVE in use)
/// the XSAVE area described by `_fpx_sw_bytes` and followed by magic2, as
/// Linux lays it out.
fn fpu_frame(me: &Process) -> Vec<u8> {
    let area = me.fpu().bytes();
    let size = hal::fpu::state_size();
    let mut v = area[..size].to_vec();
    v[SW_BYTES..512].fill(0);
    if hal::fpu::mask() != 0 {
        let mut put =
            |off: usize, b: &[u8]| v[SW_BYTES + off..SW_BYTES + off + b.len()].copy_from_slice(b);
        put(0, &FP_XSTATE_MAGIC1.to_le_bytes());
        put(4, &(size as u32 + 4).to_le_bytes()); // extended_size
        put(8, &u64::from(hal::fpu::mask()).to_le_bytes()); // xfeatures
        put(16, &(size as u32).to_le_bytes()); // xstate_size
        v.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    }
    v
}

/// Reads the fpstate at `addr` back: the whole XSAVE state when its
/// markers say so (and match what the kernel uses), else the 512-byte
/// FXSAVE area. (state, whether it is XSAVE state)
fn read_fpu_frame(addr: u64) -> KResult<(Vec<u8>, bool)> {
    let mut v = uaccess::read_vec(addr, 512)?;
    let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]));
    let size = hal::fpu::state_size();
    let xstate = hal::fpu::mask() != 0
        && word(&v, SW_BYTES) == FP_XSTATE_MAGIC1
        && word(&v, SW_BYTES + 16) as usize == size
        && word(&v, SW_BYTES + 4) as usize == size + 4;
    if !xstate {
        return Ok((v, false));
    }
    let rest = uaccess::read_vec(addr + 512, size + 4 - 512)?;
    if word(&rest, size - 512) != FP_XSTATE_MAGIC2 {
        return Ok((v, false));
    }
    v.extend_from_slice(&rest[..size - 512]);
    Ok((v, true))
}

/// `rt_sigreturn(2)`: restores the context saved by [`setup_frame`].
pub fn sigreturn(f: &mut TrapFrame) -> KResult<u64> {
    let me = super::sched::current();
    let base = f.rsp.wrapping_sub(8); // the handler's `ret` popped pretcode
    let mut buf = [0u8; FRAME_SIZE as usize];
    let mut fp: Option<(Vec<u8>, bool)> = None;
    // Everything is read before anything is restored: a bad frame or
    // fpstate pointer leaves the registers alone and kills with SIGSEGV,
    // as Linux's rt_sigreturn does.
    let read = uaccess::copy_in(base, &mut buf).and_then(|()| {
        let fpstate = u64::from_le_bytes(
            buf[(UC_MCONTEXT + 184) as usize..(UC_MCONTEXT + 192) as usize]
                .try_into()
                .unwrap_or([0; 8]),
        );
        match fpstate {
            0 => Ok(()),
            a => read_fpu_frame(a).map(|f| fp = Some(f)),
        }
    });
    let Ok(()) = read else {
        force(&me, SIGSEGV);
        return Ok(f.rax);
    };
    let get = |off: u64| {
        u64::from_le_bytes(
            buf[off as usize..off as usize + 8]
                .try_into()
                .unwrap_or([0; 8]),
        )
    };
    let r = |i: u64| get(UC_MCONTEXT + 8 * i);
    f.r8 = r(0);
    f.r9 = r(1);
    f.r10 = r(2);
    f.r11 = r(3);
    f.r12 = r(4);
    f.r13 = r(5);
    f.r14 = r(6);
    f.r15 = r(7);
    f.rdi = r(8);
    f.rsi = r(9);
    f.rbp = r(10);
    f.rbx = r(11);
    f.rdx = r(12);
    f.rax = r(13);
    f.rcx = r(14);
    f.rsp = r(15);
    f.rip = r(16);
    // Only the user-changeable flags come back: CF PF AF ZF SF TF DF OF AC.
    const USER_FLAGS: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x40000;
    f.rflags = (f.rflags & !USER_FLAGS) | (r(17) & USER_FLAGS) | 0x200;
    // CS and SS come back as saved with RPL 3, as on Linux: a program may
    // pick its code segment. A selector the CPU refuses makes the return's
    // iretq fault, which the entry code turns into this program's SIGSEGV.
    // A 64-bit CS with an unusable SS gets the usual SS unless the program
    // asked for strict restore (Linux's force_valid_ss).
    let segs = r(18);
    f.cs = (segs & 0xffff) | 3;
    f.ss = ((segs >> 48) & 0xffff) | 3;
    if f.cs == hal::gdt::USER_CS as u64
        && get(UC) & UC_STRICT_RESTORE_SS == 0
        && f.ss != hal::gdt::USER_DS as u64
    {
        f.ss = hal::gdt::USER_DS as u64;
    }
    if let Some((state, xstate)) = fp {
        me.fpu().load(&state, xstate);
    }
    let uc_stack = (UC + 16) as usize;
    let mut st = [0u8; STACK_T_SIZE];
    st.copy_from_slice(&buf[uc_stack..uc_stack + STACK_T_SIZE]);
    altstack::restore(&st, f.rsp);
    me.sig.lock().set_mask(get(UC_SIGMASK));
    Ok(f.rax)
}

/// `rt_sigaction(2)`.
pub fn sigaction(sig: u64, act: u64, oldact: u64, sigsetsize: u64) -> KResult<u64> {
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let sig = check_signo(sig, false)?;
    let me = super::sched::current();
    let old = me.sig.lock().actions[sig as usize];
    let new = if act != 0 {
        if sig == SIGKILL || sig == SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let mut b = [0u8; 32];
        uaccess::copy_in(act, &mut b)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Some(SigAction {
            handler: w(0),
            flags: w(1),
            restorer: w(2),
            mask: w(3),
        })
    } else {
        None
    };
    if oldact != 0 {
        let mut b = [0u8; 32];
        for (i, v) in [old.handler, old.flags, old.restorer, old.mask]
            .iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        uaccess::copy_out(oldact, &b)?;
    }
    if let Some(n) = new {
        // Handlers are the process's (CLONE_SIGHAND): each thread keeps a
        // copy, all set under the group's lock (clone copies under it too).
        let threads = me.group.threads.lock();
        for t in threads.iter().chain(core::iter::once(&me)) {
            let mut s = t.sig.lock();
            s.actions[sig as usize] = n;
            // Setting SIG_IGN discards a pending instance (POSIX).
            if n.handler == SIG_IGN {
                s.pending &= !bit(sig);
            }
        }
        if n.handler == SIG_IGN {
            me.group.shared_sig.lock().discard(sig);
        }
    }
    let _ = SA_SIGINFO;
    Ok(0)
}

/// `rt_sigprocmask(2)`.
pub fn sigprocmask(how: u64, set: u64, oldset: u64, sigsetsize: u64) -> KResult<u64> {
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let me = super::sched::current();
    let old = me.sig.lock().mask;
    let new = if set != 0 {
        Some(uaccess::read_u64(set)?)
    } else {
        None
    };
    if let Some(n) = new {
        let m = match how {
            0 => old | n,
            1 => old & !n,
            2 => n,
            _ => return Err(Errno::EINVAL),
        };
        me.sig.lock().set_mask(m);
    }
    if oldset != 0 {
        uaccess::write_u64(oldset, old)?;
    }
    Ok(0)
}

/// The signals pending for a whole process (no thread could take them
/// when they came: all blocked them).
pub struct SharedPending {
    pub pending: u64,
    info: [SigInfo; NSIG as usize + 1],
}

impl Default for SharedPending {
    fn default() -> Self {
        SharedPending {
            pending: 0,
            info: [SigInfo::default(); NSIG as usize + 1],
        }
    }
}

impl SharedPending {
    fn add(&mut self, sig: u32, info: SigInfo) {
        if self.pending & bit(sig) == 0 {
            self.info[sig as usize] = info;
        }
        self.pending |= bit(sig);
    }

    /// Takes the lowest pending signal in `allowed`.
    pub fn take(&mut self, allowed: u64) -> Option<(u32, SigInfo)> {
        let ready = self.pending & allowed;
        if ready == 0 {
            return None;
        }
        let sig = ready.trailing_zeros() + 1;
        self.pending &= !bit(sig);
        Some((sig, core::mem::take(&mut self.info[sig as usize])))
    }

    /// Drops `sig` (set to SIG_IGN).
    pub fn discard(&mut self, sig: u32) {
        self.pending &= !bit(sig);
    }
}
