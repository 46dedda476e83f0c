//! The `syscall` instruction entry. It builds the same [`TrapFrame`] as an
//! interrupt (vector [`SYSCALL_VECTOR`]) on the task's kernel stack and
//! saves the user's XMM registers (the rest of the FPU state only when
//! needed: [`crate::fpu`]), so signal delivery, fork and execve edit one
//! frame type; its own return sequence restores that frame without the
//! privilege tests the shared trap path needs (a syscall always came from
//! user mode).
//!
//! A few syscalls that only read the caller's identity (getpid and the
//! like) take a light path instead: no frame and no FPU save, interrupts
//! off until sysret, a handler checked to contain no SSE code
//! ([`set_leaf`]). That is what the instruction counts of a null syscall
//! measure; everything else pays four instructions more for the test.

use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

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
     * The light path: no frame, no XMM save. Interrupts stay off from the
     * syscall instruction to sysretq (IA32_FMASK clears IF), so nothing
     * can switch tasks, deliver a signal or look for a frame meanwhile;
     * the handler's code is checked to contain no SSE instruction
     * (xtask kernel_isa), so the user's XMM registers are untouched. Only
     * what the C ABI lets the handler clobber and sysret needs is saved:
     * the argument registers, rcx (user RIP) and r11 (user RFLAGS). The
     * handler returns (value, handled) in rax:rdx; not handled (work
     * pending, a case it leaves to the full handler) means rax is still
     * the syscall number, and the full path at 7 starts over from the
     * same stack top with every register as the syscall left it. The
     * user RSP stays in %gs:16: only this entry writes it, and nothing
     * here can enter it again.
     */
    .global syscall_leaf
syscall_leaf:
8:
    pushq %rcx
    pushq %r11
    pushq %rdi
    pushq %rsi
    pushq %rdx
    pushq %r8
    pushq %r9
    pushq %r10
    movq %rax, %rdi
    call *{leaf}(%rip)
    testq %rdx, %rdx
    /* pop leaves the flags alone. */
    popq %r10
    popq %r9
    popq %r8
    popq %rdx
    popq %rsi
    popq %rdi
    popq %r11
    popq %rcx
    jz 7b
    movq %gs:16, %rsp
    swapgs
    sysretq

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
    leaf = sym LEAF,
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

/// What a leaf handler returns, in rax:rdx (the C ABI's two-word return).
#[repr(C)]
pub struct LeafResult {
    /// The syscall's return value, or its number when not handled.
    pub value: u64,
    /// Nonzero when handled; 0 sends the call to the full handler.
    pub handled: u64,
}

impl LeafResult {
    /// Leaves syscall `nr` to the full handler.
    pub fn full(nr: u64) -> Self {
        Self {
            value: nr,
            handled: 0,
        }
    }

    /// Returns `value` to user mode.
    pub fn done(value: u64) -> Self {
        Self { value, handled: 1 }
    }
}

/// The kernel's handler for leaf syscalls: called with the syscall number,
/// interrupts off, on the kernel stack, with the user's XMM registers
/// still live (so its code must contain no SSE instruction), and no frame.
/// It must not block, fault, or enable interrupts.
pub type LeafHandler = extern "C" fn(u64) -> LeafResult;

/// Syscall numbers the light path may take (below this bound).
const LEAF_COUNT: usize = 512;

/// Nonzero for the numbers [`LEAF`] handles; read by the entry assembly.
static LEAF_TABLE: [AtomicU8; LEAF_COUNT] = [const { AtomicU8::new(0) }; LEAF_COUNT];

/// The [`LeafHandler`]; never null while a LEAF_TABLE entry is set.
static LEAF: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Sends the syscalls numbered `nrs` to `handler` on the light path (no
/// frame, no FPU save, interrupts off throughout). Call before any user
/// mode exists.
pub fn set_leaf(handler: LeafHandler, nrs: &[u32]) {
    LEAF.store(handler as *mut (), Ordering::Release);
    for &n in nrs {
        if let Some(e) = LEAF_TABLE.get(n as usize) {
            e.store(1, Ordering::Release);
        }
    }
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
