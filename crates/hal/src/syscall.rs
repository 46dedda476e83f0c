//! The `syscall` instruction entry. It builds the same [`TrapFrame`] as an
//! interrupt (vector [`SYSCALL_VECTOR`]) on the task's kernel stack and
//! saves the user's XMM registers (the rest of the FPU state only when
//! needed: [`crate::fpu`]), so signal delivery, fork and execve edit one
//! frame type; its own return sequence restores that frame without the
//! privilege tests the shared trap path needs (a syscall always came from
//! user mode).

use core::sync::atomic::{AtomicPtr, Ordering};

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
