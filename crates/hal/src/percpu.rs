//! Per-CPU data reached through GS: the fields the assembly entry paths
//! need (kernel stack of the running task, user RSP scratch, the running
//! task's FPU save area), the CPU's index, and the kernel's work word
//! (read on every return to user mode, so one GS-relative access).

use core::sync::atomic::AtomicU32;

use crate::gdt::MAX_CPUS;

/// Offsets used by trap_entry.S and syscall.rs: keep in sync.
#[repr(C, align(64))]
struct PerCpu {
    self_ptr: u64,   // 0
    kstack_top: u64, // 8
    user_rsp: u64,   // 16
    scratch: u64,    // 24
    fpu_area: u64,   // 32
    cpu_id: u64,     // 40
    work: AtomicU32, // 48
    /// 1 while the running task is in the kernel on its own behalf and its
    /// entry saved only its XMM registers (the rest of its FPU
    /// state is still in the registers); 0 when its FPU area holds all.
    /// See [`crate::fpu`].
    fpu_live: u64, // 56
    /// The running task's [`crate::syscall::TaskIds`] (the light syscall
    /// path answers from it).
    task_ids: u64, // 64
}

static mut PERCPU: [PerCpu; MAX_CPUS] = [const {
    PerCpu {
        self_ptr: 0,
        kstack_top: 0,
        user_rsp: 0,
        scratch: 0,
        fpu_area: 0,
        cpu_id: 0,
        work: AtomicU32::new(0),
        fpu_live: 0,
        task_ids: 0,
    }
}; MAX_CPUS];

/// Bytes of a task's FPU area: room for the XSAVE state (see
/// [`crate::fpu`]), 64-aligned as XSAVE requires.
pub const FPU_AREA_SIZE: usize = 1024;

/// A task's user FPU state, as FXSAVE or XSAVE left it (the legacy
/// 512-byte layout first, then the XSAVE header and AVX), written by the
/// entry assembly while the task is in the kernel.
#[repr(C, align(64))]
pub struct FpuArea(core::cell::UnsafeCell<[u8; FPU_AREA_SIZE]>);

// SAFETY: a task's area is written only by the CPU running that task
// (entry assembly) or by its owner before the task first runs.
unsafe impl Sync for FpuArea {}

impl FpuArea {
    /// The state a fresh process starts with: x87 control word 0x37f and
    /// MXCSR 0x1f80, as Linux sets them; an XSAVE header of zeros (every
    /// other component in its initial state).
    pub fn initial() -> FpuArea {
        let mut a = [0u8; FPU_AREA_SIZE];
        a[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        a[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        FpuArea(core::cell::UnsafeCell::new(a))
    }

    /// Makes the area hold the whole state when it is the running task's
    /// and its entry from user mode saved only part (see [`crate::fpu`]).
    fn complete(&self) {
        if self.0.get() as u64 == current_fpu_area() {
            crate::fpu::sync_current();
        }
    }

    /// The saved state as bytes (signal frames: the first
    /// [`crate::fpu::state_size`] of them are the state).
    pub fn bytes(&self) -> [u8; FPU_AREA_SIZE] {
        self.complete();
        // SAFETY: as snapshot.
        unsafe { *self.0.get() }
    }

    /// Replaces the saved state (rt_sigreturn, execve) with `bytes`: a
    /// whole XSAVE area when `xstate` (and XSAVE is in use), else the
    /// 512-byte FXSAVE layout, the other components then going back to
    /// their initial state. What XRSTOR/FXRSTOR would fault on is cleared:
    /// MXCSR's reserved bits, components not enabled, the compacted-format
    /// bit and the header's reserved bytes.
    pub fn load(&self, bytes: &[u8], xstate: bool) {
        // Complete first, so the return to user mode restores the whole
        // area (this state), not just XMM over stale x87/AVX registers.
        self.complete();
        let mut b = [0u8; FPU_AREA_SIZE];
        let mask = crate::fpu::mask() as u64;
        let n = if xstate && mask != 0 {
            crate::fpu::XSTATE_SIZE
        } else {
            512
        };
        let n = n.min(bytes.len());
        b[..n].copy_from_slice(&bytes[..n]);
        let mxcsr = u32::from_le_bytes([b[24], b[25], b[26], b[27]]) & 0xffff;
        b[24..28].copy_from_slice(&mxcsr.to_le_bytes());
        // The XSAVE header (bytes 512..576): XSTATE_BV, then zeros.
        let bv = if n > 512 {
            u64::from_le_bytes(b[512..520].try_into().unwrap_or([0; 8])) & mask
        } else {
            0b11 & mask // x87 and SSE from the legacy area, AVX initial
        };
        b[512..576].fill(0);
        b[512..520].copy_from_slice(&bv.to_le_bytes());
        // SAFETY: the owning task is in the kernel; the entry assembly
        // reads the area only when returning to user mode.
        unsafe { *self.0.get() = b };
    }

    /// A copy of the saved state (fork copies the parent's, which the
    /// syscall entry saved).
    pub fn snapshot(&self) -> FpuArea {
        self.complete();
        // SAFETY: called by the owning task while it runs in the kernel,
        // when no entry path writes the area.
        FpuArea(core::cell::UnsafeCell::new(unsafe { *self.0.get() }))
    }
}

const IA32_GS_BASE: u32 = 0xc000_0101;
const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
const IA32_FS_BASE: u32 = 0xc000_0100;

/// Points GS at this CPU's area (kernel GS base; the user's is 0).
pub fn init(cpu: usize) {
    // SAFETY: each CPU writes only its own slot, before using GS.
    unsafe {
        let p = core::ptr::addr_of_mut!(PERCPU[cpu]);
        (*p).self_ptr = p as u64;
        (*p).cpu_id = cpu as u64;
        crate::cpu::wrmsr(IA32_GS_BASE, p as u64);
        crate::cpu::wrmsr(IA32_KERNEL_GS_BASE, 0);
    }
}

fn this() -> *mut PerCpu {
    crate::cpu::rdmsr(IA32_GS_BASE) as *mut PerCpu
}

/// This CPU's work word (the kernel decides what its bits mean).
#[inline]
pub fn work() -> &'static AtomicU32 {
    let p: u64;
    // SAFETY: in kernel mode GS base points at this CPU's PerCpu, whose
    // offset 0 holds its own address (set in init before GS is used).
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags));
    }
    // SAFETY: `p` is the address of this CPU's slot in PERCPU, a static;
    // `work` is only ever accessed through shared references (atomics),
    // and the other fields are written through raw pointers, never
    // through a reference covering `work`.
    unsafe { &(*(p as *const PerCpu)).work }
}

/// CPU `cpu`'s work word (to post work to another CPU), if it exists.
pub fn work_of(cpu: usize) -> Option<&'static AtomicU32> {
    if cpu >= MAX_CPUS {
        return None;
    }
    // SAFETY: as in `work`: a shared reference to an atomic field of a
    // static that is never borrowed mutably as a whole.
    Some(unsafe { &(*core::ptr::addr_of!(PERCPU[cpu])).work })
}

/// This CPU's index (one GS-relative load: hot paths ask for it).
#[inline]
pub fn cpu_id() -> usize {
    let id: u64;
    // SAFETY: in kernel mode GS base points at this CPU's PerCpu (set in
    // init, swapped in on every entry from user mode); offset 40 is
    // `cpu_id` (repr(C) layout above).
    unsafe {
        core::arch::asm!("mov {}, gs:[40]", out(reg) id, options(nostack, readonly, preserves_flags));
    }
    id as usize
}

/// Installs the running task's kernel stack top, FPU area and ids:
/// entries from user mode land on that stack, save user FPU state there
/// and answer leaf syscalls from the ids. The caller guarantees all three
/// live as long as the task runs on this CPU.
pub fn set_current_task(kstack_top: u64, fpu: &FpuArea, ids: &crate::syscall::TaskIds) {
    // SAFETY: called with interrupts disabled on the owning CPU; the
    // assembly reads these fields only on entry from user mode.
    unsafe {
        let p = this();
        (*p).kstack_top = kstack_top;
        (*p).fpu_area = fpu.0.get() as u64;
        (*p).task_ids = ids as *const crate::syscall::TaskIds as u64;
        crate::gdt::set_kernel_stack((*p).cpu_id as usize, kstack_top);
    }
    crate::guard::sync_cpu(cpu_id());
}

/// Whether the running task's x87/AVX state is still in the registers
/// (in the kernel on its behalf, see [`crate::fpu`]).
pub(crate) fn fpu_live() -> bool {
    // SAFETY: a plain read of this CPU's own field, written only by this
    // CPU (entry assembly, set_fpu_live).
    unsafe { (*this()).fpu_live != 0 }
}

pub(crate) fn set_fpu_live(live: bool) {
    // SAFETY: this CPU's own field, with interrupts off (sync_current).
    unsafe { (*this()).fpu_live = u64::from(live) }
}

/// The running task's FPU area (as installed by [`set_current_task`]).
pub(crate) fn current_fpu_area() -> u64 {
    // SAFETY: a plain read of this CPU's own field.
    unsafe { (*this()).fpu_area }
}

/// The kernel stack top of the task running on this CPU (0 before any).
pub fn current_kstack_top() -> u64 {
    // SAFETY: a plain read of this CPU's own field (written only by this
    // CPU, in set_current_task).
    unsafe { (*this()).kstack_top }
}

/// The user FS base (TLS pointer) of the running task.
pub fn user_fs_base() -> u64 {
    crate::cpu::rdmsr(IA32_FS_BASE)
}

/// Sets the user FS base (arch_prctl(ARCH_SET_FS), context switches).
pub fn set_user_fs_base(v: u64) {
    // SAFETY: FS base only affects user-mode %fs accesses; the kernel does
    // not use FS. A non-canonical value would #GP, so callers check it.
    unsafe { crate::cpu::wrmsr(IA32_FS_BASE, v) }
}

/// The user GS base while in the kernel (it sits in KERNEL_GS_BASE).
pub fn user_gs_base() -> u64 {
    crate::cpu::rdmsr(IA32_KERNEL_GS_BASE)
}

/// Sets the user GS base (takes effect at the next swapgs to user).
pub fn set_user_gs_base(v: u64) {
    // SAFETY: as set_user_fs_base.
    unsafe { crate::cpu::wrmsr(IA32_KERNEL_GS_BASE, v) }
}
