//! Kernel context switches between tasks, and the initial kernel stack of
//! a task that has never run (so that its first switch-in returns to user
//! mode through the common trap return path).

use crate::idt::TrapFrame;

core::arch::global_asm!(
    r#"
    .section .text.context, "ax"
    .global hal_context_switch
    // rdi = where to save the old rsp, rsi = the slot holding the new rsp.
    // The old context is published first (the last write to its stack),
    // then the new one is claimed from its slot (swapped to 0), spinning
    // while its own CPU has not published it yet. Publishing before
    // waiting is what keeps CPUs that switch to each other's tasks from
    // waiting for each other: no waiter still holds an unpublished context.
hal_context_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
1:
    movq (%rsi), %rax
    testq %rax, %rax
    jz 2f
    xorl %ecx, %ecx
    lock cmpxchgq %rcx, (%rsi)
    jnz 1b
    movq %rax, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
2:
    pause
    jmp 1b

    .global hal_first_switch_in
hal_first_switch_in:
    call hal_first_run_hook
    jmp trap_return
"#,
    options(att_syntax)
);

extern "C" {
    fn hal_context_switch(save_rsp: *mut u64, new_slot: *const u64);
    fn hal_first_switch_in();
}

static FIRST_RUN: spin::Once<fn()> = spin::Once::new();

/// Sets the function every new task runs (on its own stack, interrupts
/// off) before it first returns to user mode.
pub fn set_first_run_hook(f: fn()) {
    FIRST_RUN.call_once(|| f);
}

#[no_mangle]
extern "C" fn hal_first_run_hook() {
    if let Some(f) = FIRST_RUN.get() {
        f();
    }
}

/// A task's kernel stack: trap frames from user mode land at its top. An
/// unmapped guard page lies under it (see [`crate::guard`]).
pub struct KernelStack {
    /// The guard page; the stack is the [`KERNEL_STACK_SIZE`] bytes above.
    base: u64,
}

// SAFETY: the stack is plain memory owned by this value; who may touch it
// when (the task running on it, its creator before the first run) is the
// scheduler's protocol, as it was for the boxed slice this replaced.
unsafe impl Send for KernelStack {}
// SAFETY: as above; `&KernelStack` only reads its address or, through
// top_frame, a frame its owner is not changing at that moment.
unsafe impl Sync for KernelStack {}

/// Size of every kernel stack.
pub const KERNEL_STACK_SIZE: usize = 32 * 1024;
const FRAME_WORDS: usize = core::mem::size_of::<TrapFrame>() / 8;

/// Whether dropped stacks are measured (`stackcheck=1`): the deepest
/// use seen, in bytes, is kept in [`STACK_MAX_USED`].
static STACK_CHECK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
static STACK_MAX_USED: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Measures every kernel stack when it is freed from now on (a scan of
/// up to 4,096 words per exit: for finding out how deep the kernel's
/// paths go, not for production).
pub fn set_stack_check(on: bool) {
    STACK_CHECK.store(on, core::sync::atomic::Ordering::Relaxed);
}

/// The deepest kernel stack use measured so far (bytes; 0 unless
/// [`set_stack_check`]): a stack is zeroed when made, so its lowest
/// non-zero word bounds how deep it was ever used.
pub fn stack_max_used() -> usize {
    STACK_MAX_USED.load(core::sync::atomic::Ordering::Relaxed)
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        if STACK_CHECK.load(core::sync::atomic::Ordering::Relaxed) {
            let unused = self.words().iter().take_while(|&&w| w == 0).count() * 8;
            STACK_MAX_USED.fetch_max(
                KERNEL_STACK_SIZE - unused,
                core::sync::atomic::Ordering::Relaxed,
            );
        }
        crate::guard::free_stack(self.base, KERNEL_STACK_SIZE);
    }
}

impl KernelStack {
    /// A zeroed stack, or None when the heap cannot give one (a new
    /// process then fails with EAGAIN rather than the kernel panicking).
    pub fn new() -> Option<KernelStack> {
        Some(KernelStack {
            base: crate::guard::alloc_stack(KERNEL_STACK_SIZE)?,
        })
    }

    fn words(&self) -> &[u64] {
        // SAFETY: the stack's bytes are mapped, owned by self and 8-aligned.
        unsafe {
            core::slice::from_raw_parts(
                (self.base + crate::paging::PAGE_SIZE) as *const u64,
                KERNEL_STACK_SIZE / 8,
            )
        }
    }

    fn words_mut(&mut self) -> &mut [u64] {
        // SAFETY: as in words, and `&mut self` makes this the only view.
        unsafe {
            core::slice::from_raw_parts_mut(
                (self.base + crate::paging::PAGE_SIZE) as *mut u64,
                KERNEL_STACK_SIZE / 8,
            )
        }
    }

    /// The address one past the top (page-aligned, so 16-aligned).
    pub fn top(&self) -> u64 {
        self.base + crate::paging::PAGE_SIZE + KERNEL_STACK_SIZE as u64
    }

    /// The guard page under the stack (self tests check it is unmapped).
    pub fn guard_page(&self) -> u64 {
        self.base
    }

    fn index_of(&self, addr: u64) -> usize {
        ((addr - self.base - crate::paging::PAGE_SIZE) / 8) as usize
    }

    /// Writes `frame` at the top and a switch frame under it that enters
    /// `hal_first_switch_in`; returns the saved RSP for [`switch`].
    pub fn prepare_first_run(&mut self, frame: &TrapFrame) -> u64 {
        let frame_at = self.top() - (FRAME_WORDS * 8) as u64;
        let i = self.index_of(frame_at);
        let src = frame_words(frame);
        self.words_mut()[i..i + FRAME_WORDS].copy_from_slice(&src);
        // Switch frame: r15, r14, r13, r12, rbx, rbp, return address.
        let sw = frame_at - 7 * 8;
        let j = self.index_of(sw);
        let w = self.words_mut();
        w[j..j + 6].fill(0);
        w[j + 6] = hal_first_switch_in as *const () as u64;
        sw
    }

    /// The trap frame at the top of the stack (valid while the task is in
    /// the kernel, or before its first run).
    pub fn top_frame(&self) -> TrapFrame {
        let i = self.index_of(self.top() - (FRAME_WORDS * 8) as u64);
        words_frame(&self.words()[i..i + FRAME_WORDS])
    }
}

fn frame_words(f: &TrapFrame) -> [u64; FRAME_WORDS] {
    [
        f.r15,
        f.r14,
        f.r13,
        f.r12,
        f.r11,
        f.r10,
        f.r9,
        f.r8,
        f.rbp,
        f.rdi,
        f.rsi,
        f.rdx,
        f.rcx,
        f.rbx,
        f.rax,
        f.vector,
        f.error_code,
        f.rip,
        f.cs,
        f.rflags,
        f.rsp,
        f.ss,
    ]
}

fn words_frame(w: &[u64]) -> TrapFrame {
    TrapFrame {
        r15: w[0],
        r14: w[1],
        r13: w[2],
        r12: w[3],
        r11: w[4],
        r10: w[5],
        r9: w[6],
        r8: w[7],
        rbp: w[8],
        rdi: w[9],
        rsi: w[10],
        rdx: w[11],
        rcx: w[12],
        rbx: w[13],
        rax: w[14],
        vector: w[15],
        error_code: w[16],
        rip: w[17],
        cs: w[18],
        rflags: w[19],
        rsp: w[20],
        ss: w[21],
    }
}

/// A user-mode frame that starts executing at `rip` with stack `rsp`
/// (interrupts enabled, all other registers zero).
pub fn user_frame(rip: u64, rsp: u64) -> TrapFrame {
    TrapFrame {
        rip,
        rsp,
        cs: crate::gdt::USER_CS as u64,
        ss: crate::gdt::USER_DS as u64,
        rflags: 0x202,
        ..TrapFrame::default()
    }
}

/// Saves the current kernel context into `save` (publishing it: from then
/// on another CPU may resume it) and resumes the one published in `next`,
/// claiming it (the slot reads 0 while the context runs), waiting for it
/// while its CPU is still switching it out.
///
/// Call with interrupts disabled and no lock held: another CPU may be
/// waiting for the context published here. The caller keeps both stacks
/// alive (see [`crate::current::CpuCurrent::switch_to_installed`]).
pub(crate) fn switch(save: &core::sync::atomic::AtomicU64, next: &core::sync::atomic::AtomicU64) {
    // The outgoing task's FPU state, whole, into its area before its
    // context is published: another CPU may resume it right after.
    crate::fpu::sync_current();
    // SAFETY: `next` holds 0 or a stack pointer produced by this module
    // (an earlier switch or prepare_first_run) for a live kernel stack,
    // claimed here by one compare-exchange so no two CPUs resume it; the
    // callee-saved registers are restored on return; `save` is written
    // only by this switch while the context it saves is running.
    unsafe { hal_context_switch(save.as_ptr(), next.as_ptr()) }
}
