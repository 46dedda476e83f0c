//! The kernel's trap handler: exceptions, the timer and device interrupts.
//!
//! Interrupt context never allocates, never takes a lock that process
//! context takes with interrupts enabled, and never wakes processes: it
//! counts ticks and queues input. The work that follows (waking sleepers,
//! the line discipline, preemption, signals) runs on the way back to user
//! mode or in the idle loop, where no kernel lock can be held.

use core::sync::atomic::{AtomicU64, Ordering};
use hal::idt::{vector, TrapFrame};

use crate::proc::{sched, signal};

/// Vector of the local APIC timer.
pub const TIMER_VECTOR: u8 = 0x20;
/// Vector of COM1's receive interrupt (ISA IRQ 4).
pub const COM1_VECTOR: u8 = 0x24;
/// Another CPU wants this one to look at its run queue and work word.
pub const KICK_VECTOR: u8 = 0x30;
/// Timer interrupts per second (on every CPU).
pub const TIMER_HZ: u64 = 1000;

static CAUGHT: AtomicU64 = AtomicU64::new(0);
/// Last tick whose deferred work ran.
static TICK_DONE: AtomicU64 = AtomicU64::new(0);

/// Milliseconds since boot: the kernel's tick clock, the same on every
/// CPU (read from the TSC, so a CPU that stops taking interrupts does not
/// stop it).
pub fn ticks() -> u64 {
    hal::time::now_ns() / (1_000_000_000 / TIMER_HZ)
}

/// Timer interrupts taken by this CPU.
pub fn cpu_ticks() -> u64 {
    crate::proc::cpu::this().ticks.load(Ordering::Relaxed)
}

/// Kernel-mode faults recovered by a probe so far.
pub fn caught_faults() -> u64 {
    CAUGHT.load(Ordering::Relaxed)
}

/// Installs the handlers and loads the IDT on this CPU.
pub fn init() {
    hal::idt::set_handler(handle);
    hal::idt::init();
}

/// When the next heap shrink is due (ns).
static HEAP_SHRINK_AT: AtomicU64 = AtomicU64::new(0);

/// Work deferred from interrupts, once per new tick: wake sleepers and
/// pollers when one's deadline is due, write dirty file pages back every
/// 5 s, give empty grown heap spans back every second; then run the tty line
/// discipline, poll io_uring rings. Called with no kernel lock held.
pub fn deferred_work() {
    let t = ticks();
    if TICK_DONE.swap(t, Ordering::Relaxed) != t {
        let now = hal::time::now_ns();
        crate::syscall::time::expire(now);
        crate::syscall::futex::expire(now);
        crate::proc::timers::expire(now);
        crate::fs::epoll::expire(now);
        if crate::fs::POLL_DEADLINES.take_due(now) {
            crate::fs::POLL_WQ.wake_all();
        }
        // Every 5 s, on one CPU: dirty file pages to the disks.
        if crate::fs::ext4_pages::writeback_due(now) {
            crate::fs::mount::writeback_all(now);
        }
        // Every second, on one CPU: grown heap spans left empty go back
        // to the frame pools.
        let at = HEAP_SHRINK_AT.load(Ordering::Relaxed);
        if now >= at
            && HEAP_SHRINK_AT
                .compare_exchange(
                    at,
                    now + 1_000_000_000,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            hal::heap::shrink();
        }
    }
    if crate::console::has_input() {
        crate::fs::tty::pump();
    }
    // io_uring: pending requests and SQPOLL rings are looked at on every
    // boundary of the torus (one load when there are none).
    crate::io_uring::boundary();
    crate::net::boundary();
    crate::block::boundary();
    crate::cluster::boundary();
    crate::proc::braid::boundary();
}

fn handle(frame: &mut TrapFrame) {
    match frame.vector {
        v if v == TIMER_VECTOR as u64 => {
            hal::apic::eoi();
            let tor = crate::proc::cpu::this();
            tor.ticks.fetch_add(1, Ordering::Relaxed);
            let busy = if frame.from_user() {
                &tor.user_ticks
            } else if tor.idle.load(Ordering::Relaxed) {
                &tor.idle_ticks
            } else {
                &tor.system_ticks
            };
            busy.fetch_add(1, Ordering::Relaxed);
            if let Some(p) = sched::try_current() {
                p.ticks.fetch_add(1, Ordering::Relaxed);
            }
            sched::on_tick();
            crate::proc::work::raise(crate::proc::work::DEFERRED);
            if frame.from_user() {
                crate::syscall::return_to_user(frame);
            }
        }
        v if v == COM1_VECTOR as u64 => device_interrupt(frame, crate::console::on_interrupt),
        v if v == crate::net::NET_VECTOR as u64 => device_interrupt(frame, || {
            crate::net::on_interrupt();
            crate::block::on_shared_interrupt();
        }),
        v if v == crate::block::BLK_VECTOR as u64 => {
            device_interrupt(frame, crate::block::on_interrupt)
        }
        v if v == hal::tlb::SHOOTDOWN_VECTOR as u64 => {
            hal::tlb::serve();
            hal::apic::eoi();
        }
        v if v == KICK_VECTOR as u64 => {
            hal::apic::eoi();
            if frame.from_user() {
                crate::syscall::return_to_user(frame);
            }
        }
        v if v == hal::apic::SPURIOUS_VECTOR as u64 => {}
        v if v < vector::FIRST_EXTERNAL => exception(frame),
        _ => hal::apic::eoi(),
    }
}

/// A device's interrupt: `note` takes what the device says (the rest is
/// deferred work, done before the return to user mode), then the
/// interrupt is acknowledged.
fn device_interrupt(frame: &mut TrapFrame, note: impl FnOnce()) {
    note();
    crate::proc::work::raise(crate::proc::work::DEFERRED);
    hal::apic::eoi();
    if frame.from_user() {
        crate::syscall::return_to_user(frame);
    }
}

fn exception(frame: &mut TrapFrame) {
    if frame.from_user() {
        user_exception(frame);
        crate::syscall::return_to_user(frame);
        return;
    }
    if frame.vector == vector::PAGE_FAULT {
        let addr = hal::cpu::cr2();
        // A user copy faults with interrupts on (syscalls run so): keep
        // them on while the fault takes the address space's lock, since
        // its holder may be waiting for this CPU to flush its TLB.
        if frame.rflags & (1 << 9) != 0 {
            hal::cpu::enable_interrupts();
        }
        // A user copy touching a page not yet faulted in: resolve it and
        // retry the instruction (not in the no-fault copy, made under a
        // spinlock: that one just fails, and its caller retries without
        // the lock).
        if addr < hal::probe::USER_TOP && !hal::probe::in_nofault_copy(frame.rip) {
            match crate::mm::page_fault(addr, frame.error_code) {
                Ok(()) => return,
                // No frame: the OOM killer, then retry, unless this
                // process is the one dying (its copy fails, the syscall
                // returns, and SIGKILL ends it).
                Err(abi::Errno::ENOMEM) => {
                    let dying = sched::try_current()
                        .is_some_and(|p| p.sig.lock().pending & signal::bit(signal::SIGKILL) != 0);
                    if !dying && crate::proc::oom::out_of_memory(false) {
                        return;
                    }
                }
                Err(_) => {}
            }
        }
    }
    if hal::probe::fixup(frame) {
        CAUGHT.fetch_add(1, Ordering::Relaxed);
        if sched::try_current().is_none() {
            crate::klog!(
                "trap: caught {} in a probe: rip={:#x} cr2={:#x} error={:#x}",
                hal::idt::vector_name(frame.vector),
                frame.rip,
                hal::cpu::cr2(),
                frame.error_code
            );
        }
        return;
    }
    hal::idt::report_and_exit(frame, "in kernel mode");
}

/// A fault in user mode becomes a signal (or a resolved page fault), with
/// Linux's si_code and si_addr: the faulting address for page faults, the
/// instruction for #DE/#UD/#MF/#XM, none (SI_KERNEL) for #GP and int3.
fn user_exception(frame: &mut TrapFrame) {
    // siginfo si_code values (asm-generic/siginfo.h).
    const SI_KERNEL: i32 = 0x80;
    const SEGV_MAPERR: i32 = 1;
    const SEGV_ACCERR: i32 = 2;
    const BUS_ADRERR: i32 = 2;
    const ILL_ILLOPN: i32 = 2;
    const FPE_INTDIV: i32 = 1;
    hal::cpu::enable_interrupts();
    let me = sched::current();
    let (sig, code, addr) = match frame.vector {
        vector::PAGE_FAULT => {
            let addr = hal::cpu::cr2();
            match crate::mm::page_fault(addr, frame.error_code) {
                Ok(()) => return,
                Err(abi::Errno::ENOMEM) => {
                    // The OOM killer frees memory (or a victim is still
                    // dying): retry the access. Nobody to kill: this one.
                    if crate::proc::oom::out_of_memory(true) {
                        return;
                    }
                    crate::klog!(
                        "out of memory: nothing to kill, killing pid {} ({})",
                        me.pid,
                        crate::proc::oom::memory_summary()
                    );
                    (signal::SIGKILL, 0, 0)
                }
                Err(abi::Errno::EIO) => (signal::SIGBUS, BUS_ADRERR, addr),
                Err(_) if crate::mm::is_mapped(addr) => (signal::SIGSEGV, SEGV_ACCERR, addr),
                Err(_) => (signal::SIGSEGV, SEGV_MAPERR, addr),
            }
        }
        vector::INVALID_OPCODE => (signal::SIGILL, ILL_ILLOPN, frame.rip),
        vector::DIVIDE_ERROR => (signal::SIGFPE, FPE_INTDIV, frame.rip),
        vector::X87_FP | vector::SIMD_FP => (signal::SIGFPE, 0, frame.rip),
        vector::BREAKPOINT | vector::DEBUG => (signal::SIGTRAP, SI_KERNEL, 0),
        _ => (signal::SIGSEGV, SI_KERNEL, 0), // #GP and the rest
    };
    // Like Linux's print-fatal-signals: which fault became which signal
    // (a crash in a test or the fuzzer is otherwise a bare status).
    crate::klog!(
        "fault: pid {} {} rip={:#x} addr={:#x} error={:#x} -> signal {}",
        me.pid,
        hal::idt::vector_name(frame.vector),
        frame.rip,
        hal::cpu::cr2(),
        frame.error_code,
        sig
    );
    {
        let mut s = me.sig.lock();
        s.fault_addr = addr;
        s.info[sig as usize] = signal::SigInfo::sent(code, 0);
    }
    signal::force(&me, sig);
}
