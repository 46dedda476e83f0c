//! The `syscall` instruction entry. It builds the same [`TrapFrame`] as an
//! interrupt (vector [`SYSCALL_VECTOR`]) on the task's kernel stack and
//! saves the user's XMM registers (the rest of the FPU state only when
//! needed: [`crate::fpu`]), so signal delivery, fork and execve edit one
//! frame type; its own return sequence restores that frame without the
//! privilege tests the shared trap path needs (a syscall always came from
//! user mode).
//!
//! A few syscalls that only read the caller's identity (getpid, gettid,
//! getppid) take a light path instead ([`set_leaf`]): no frame, no FPU
//! save, no call into the kernel; interrupts off from the `syscall` to
//! the `sysretq`, the answer read from the running task's [`TaskIds`],
//! which the kernel installs with the task ([`crate::percpu::set_current_task`]).
//! That is what the instruction counts of a null syscall measure;
//! everything else pays four instructions more for the test.

use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU8, Ordering};

use crate::gdt::{KERNEL_CS, SYSRET_BASE, USER_CS, USER_DS};
use crate::idt::TrapFrame;

/// The `vector` field of a frame built by the syscall entry.
pub const SYSCALL_VECTOR: u64 = 0x100;

core::arch::global_asm!(
    concat!(
        include_str!("regs.S"),
        r#"
    .section .text.syscall_entry, "ax"
    .global syscall_entry
syscall_entry:
    swapgs
    movq %rsp, %gs:16
    movq %gs:8, %rsp
    /* A leaf call (LEAF_TABLE) goes to the light path at 8, unless a
       sysret to this RIP and RFLAGS would need the checks of the full
       return: TF or RF set, or a return address past the top of user
       space (bit 47 of RCX: the syscall was the last instruction of the
       lower half). */
    cmpq ${leaf_count}, %rax
    jae 7f
    cmpb $0, {leaf_table}(%rax)
    je 7f
    testl $0x10100, %r11d
    jnz 7f
    btq $47, %rcx
    jnc 8f
7:
    pushq ${user_ds}
    pushq %gs:16
    pushq %r11
    pushq ${user_cs}
    pushq %rcx
    pushq $0
    pushq ${vector}
    /* The same frame layout as trap_save_regs. */
    SAVE_GPRS
    /* The GPRs are saved: XMM_SAVE may use rcx. Only the XMM registers
       (no MXCSR), the user FPU state kernel code can change; the rest
       stays in the registers until a context switch, a signal frame,
       fork or execve needs it in the area (fpu::sync_current). DF is
       already clear (IA32_FMASK), so no cld. */
    XMM_SAVE
    movq $1, %gs:56
    movq %rsp, %rdi
    /* The kernel's handler, straight from HANDLER (set before any user
       mode exists, so never null here). */
    call *{handler}(%rip)
    /* Always back to user mode: no privilege tests, unlike trap_return.
       A task switched away inside the call resumes here on its own
       kernel stack; the frame may have been edited (signals, execve).
       fpu_live still 1: nothing but XMM to put back. 0: the
       area holds the whole state (saved for a switch, a signal, fork,
       execve, or edited by rt_sigreturn). */
    cmpq $0, %gs:56
    je 5f
    XMM_RESTORE
    movq $0, %gs:56
    jmp 6f
5:
    FPU_RESTORE
6:
    /*
     * sysretq when the frame is what syscall left, as Linux decides:
     * rcx = rip and r11 = rflags (sysret reloads RIP and RFLAGS from
     * them), the usual CS and SS, no TF/RF, and a RIP below the top of
     * user space (so canonical: sysret with a non-canonical RCX faults
     * in ring 0 on Intel). Anything else (signal delivery, rt_sigreturn,
     * execve's first return) goes through iretq. Offsets into the frame:
     * rcx 96, r11 32, rip 136, cs 144, rflags 152, rsp 160, ss 168.
     */
    movq 96(%rsp), %rcx
    cmpq 136(%rsp), %rcx
    jne 1f
    movq 32(%rsp), %r11
    cmpq 152(%rsp), %r11
    jne 1f
    cmpq ${user_cs}, 144(%rsp)
    jne 1f
    cmpq ${user_ds}, 168(%rsp)
    jne 1f
    testl $0x10100, %r11d
    jnz 1f
    movabsq ${user_top}, %rax
    cmpq %rax, %rcx
    jae 1f
    RESTORE_GPRS
    movq 40(%rsp), %rsp
    swapgs
    sysretq
1:
    RESTORE_GPRS
    swapgs
    addq $16, %rsp
    /* A fault here is the user's (a bad CS/SS from rt_sigreturn):
       trap_common recognises this address. */
    .global syscall_iret
syscall_iret:
    iretq

    /*
     * The light path: no frame, no XMM save, no call. Interrupts stay off
     * from the syscall instruction to sysretq (IA32_FMASK clears IF), so
     * nothing can switch tasks, deliver a signal or change the running
     * task meanwhile. What a return to user mode must check is still
     * checked: work owed on this CPU (signals, preemption, deferred work:
     * the work word at %gs:48) or at syscall boundaries (LEAF_PAUSED: the
     * kernel's io_uring rings) sends the call to the full path; anything
     * raised meanwhile arrives as an interrupt right after sysret (IF
     * comes back with RFLAGS), whose return runs the full checks. The
     * answer is the running task's TaskIds field (%gs:64) whose offset + 1
     * LEAF_TABLE holds; a negative one (a thread's parent, which is its
     * leader's) is left to the full path, entered at 7 from the same stack
     * top with every register as the syscall left it. Only rax, rcx and
     * r11 may change (rcx and r11 hold the user RIP and RFLAGS for
     * sysret): rax and rdx are kept on the stack while used. The user RSP
     * stays in %gs:16: only this entry writes it, and nothing here can
     * enter it again.
     */
    .global syscall_leaf
syscall_leaf:
8:
    cmpl $0, %gs:48
    jne 7b
    cmpl $0, {leaf_paused}(%rip)
    jne 7b
    pushq %rax
    pushq %rdx
    movq %gs:64, %rdx
    testq %rdx, %rdx
    jz 9f
    movzbl {leaf_table}(%rax), %eax
    movq -1(%rdx,%rax), %rax
    testq %rax, %rax
    js 9f
    popq %rdx
    movq %gs:16, %rsp
    swapgs
    sysretq
9:
    popq %rdx
    popq %rax
    jmp 7b

    .purgem SAVE_GPRS
    .purgem RESTORE_GPRS
    .purgem FPU_RESTORE
    .purgem XMM_SAVE
    .purgem XMM_RESTORE
"#
    ),
    user_ds = const USER_DS,
    user_cs = const USER_CS,
    user_top = const crate::probe::USER_TOP,
    vector = const SYSCALL_VECTOR,
    handler = sym HANDLER,
    leaf_paused = sym LEAF_PAUSED,
    leaf_table = sym LEAF_TABLE,
    leaf_count = const LEAF_COUNT,
    xsave_mask = sym crate::fpu::XSAVE_MASK,
    options(att_syntax)
);

extern "C" {
    fn syscall_entry();
}

/// The kernel's syscall handler.
/// C ABI: the syscall entry calls it from assembly with the frame in rdi.
pub type SyscallHandler = extern "C" fn(&mut TrapFrame);

static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// What the light path answers from, per task: the values of getpid,
/// gettid and getppid, at the offsets the entry assembly reads (0, 8,
/// 16). A negative value is not answered there (the full handler is).
#[repr(C)]
pub struct TaskIds {
    tgid: AtomicI64,
    pid: AtomicI64,
    ppid: AtomicI64,
}

impl TaskIds {
    /// A task's ids; `ppid` None for one whose parent the light path must
    /// not answer (a thread: the process's parent is its leader's).
    pub const fn new(tgid: u32, pid: u32, ppid: Option<u32>) -> TaskIds {
        TaskIds {
            tgid: AtomicI64::new(tgid as i64),
            pid: AtomicI64::new(pid as i64),
            ppid: AtomicI64::new(match ppid {
                Some(p) => p as i64,
                None => -1,
            }),
        }
    }

    /// The parent recorded here (None: not recorded on this task).
    pub fn ppid(&self) -> Option<u32> {
        u32::try_from(self.ppid.load(Ordering::Relaxed)).ok()
    }

    /// Replaces the process and thread ids the light path answers: a
    /// process moved to another machine answers with its home's.
    pub fn set_ids(&self, tgid: u32, pid: u32) {
        self.tgid.store(tgid as i64, Ordering::Relaxed);
        self.pid.store(pid as i64, Ordering::Relaxed);
    }

    /// Records a new parent (reparenting); the light path answers it from
    /// its next call on, on whichever CPU the task runs.
    pub fn set_ppid(&self, ppid: u32) {
        self.ppid.store(ppid as i64, Ordering::Relaxed);
    }
}

/// Which [`TaskIds`] field a leaf syscall answers with.
#[derive(Clone, Copy)]
pub enum LeafField {
    /// getpid.
    Tgid = 0,
    /// gettid.
    Pid = 8,
    /// getppid.
    Ppid = 16,
}

/// Syscall numbers the light path may take (below this bound).
const LEAF_COUNT: usize = 512;

/// For each syscall number the light path answers, its [`TaskIds`] field
/// offset + 1 (0: not a leaf); read by the entry assembly.
static LEAF_TABLE: [AtomicU8; LEAF_COUNT] = [const { AtomicU8::new(0) }; LEAF_COUNT];

/// Nonzero while every syscall boundary has work to do (see
/// [`set_leaf_paused`]); read by the entry assembly.
static LEAF_PAUSED: AtomicU32 = AtomicU32::new(0);

/// Sends syscall `nr` of each pair to the light path, answered with the
/// running task's `field`. Call before any user mode exists.
pub fn set_leaf(leaves: &[(u32, LeafField)]) {
    for &(n, field) in leaves {
        if let Some(e) = LEAF_TABLE.get(n as usize) {
            e.store(field as u8 + 1, Ordering::Release);
        }
    }
}

/// While `paused`, every leaf syscall takes the full path: the kernel has
/// work to do at every syscall boundary (io_uring rings to advance).
pub fn set_leaf_paused(paused: bool) {
    LEAF_PAUSED.store(u32::from(paused), Ordering::Relaxed);
}

/// Runs the kernel's handler on a syscall frame (also reached through the
/// common trap path for frames with [`SYSCALL_VECTOR`]).
#[inline]
pub(crate) fn dispatch(frame: &mut TrapFrame) {
    let h = HANDLER.load(Ordering::Acquire);
    // SAFETY: HANDLER holds a SyscallHandler (set before any user mode).
    let handler: SyscallHandler = unsafe { core::mem::transmute::<*mut (), SyscallHandler>(h) };
    handler(frame);
}

const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;

/// Enables `syscall` on this CPU with `handler` as the kernel side.
pub fn init(handler: SyscallHandler) {
    HANDLER.store(handler as *mut (), Ordering::Release);
    let star = ((SYSRET_BASE as u64) << 48) | ((KERNEL_CS as u64) << 32);
    // Clear IF, TF, DF, AC on entry: the handler enables interrupts itself
    // once it runs on the kernel stack.
    let fmask = (1 << 9) | (1 << 8) | (1 << 10) | (1 << 18);
    // SAFETY: standard syscall MSR setup; EFER.SCE was set at boot; the
    // selectors match the GDT layout in gdt.rs.
    unsafe {
        crate::cpu::wrmsr(IA32_STAR, star);
        crate::cpu::wrmsr(IA32_LSTAR, syscall_entry as *const () as u64);
        crate::cpu::wrmsr(IA32_FMASK, fmask);
    }
}
