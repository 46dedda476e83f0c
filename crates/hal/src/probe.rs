//! Recoverable memory probes: copies that may fault, with the fault turned
//! into an error instead of a crash. The user-copy routines of the syscall
//! layer and the kernel's self tests (deliberate #PF and #UD) use them.
//!
//! Each probe is a small assembly routine; when a #PF/#GP/#UD hits inside
//! one, the trap handler calls [`fixup`], which moves RIP to the routine's
//! recovery label so the routine returns 1 instead of 0.
//!
//! These routines are the uaccess path: the only kernel code that touches
//! user memory. With SMAP on ([`SMAP_ON`]) the user ones open the window
//! with `stac` right before their one access and close it with `clac` on
//! both ways out; any other kernel access to a user page faults, and the
//! trap dispatcher reports it as a kernel bug. `hal_probe_copy` (kernel
//! reads in self tests and backtraces) opens no window.

core::arch::global_asm!(
    r#"
    .section .text.probe, "ax"
    .global hal_probe_copy
    // rdi = dst, rsi = src, rdx = len; returns 0 (ok) or 1 (faulted)
hal_probe_copy:
    movq %rdx, %rcx
probe_copy_start:
    rep movsb
probe_copy_end:
    xorl %eax, %eax
    ret
probe_copy_fault:
    movl $1, %eax
    ret

    .global hal_probe_copy_user
    // The same, for copies with a user side: inside the SMAP window.
    // Quadwords for the bulk, bytes for the tail (len & 7), as memcpy:
    // an eighth of the iterations, and each one costs under TCG (one
    // guest instruction per iteration under -icount).
hal_probe_copy_user:
    movq %rdx, %rcx
    shrq $3, %rcx
    andl $7, %edx
    cmpb $0, {smap}(%rip)
    je 1f
    stac
1:
probe_ucopy_start:
    rep movsq
    movq %rdx, %rcx
    rep movsb
probe_ucopy_end:
    xorl %eax, %eax
    jmp probe_clac_ret
probe_ucopy_fault:
    movl $1, %eax
    /* Every user probe leaves through here: close the SMAP window. */
probe_clac_ret:
    cmpb $0, {smap}(%rip)
    je 2f
    clac
2:
    ret

    .global hal_probe_copy_user_nofault
    // The same again, for copies made where a page fault must not be
    // resolved (a spinlock is held): the trap handler sees this range
    // and fails the copy at once (`in_nofault_copy`) instead of faulting
    // the page in, which may sleep.
    // Global: the trap handler (another crate) asks for this range.
    .global probe_nfcopy_start
    .global probe_nfcopy_end
hal_probe_copy_user_nofault:
    movq %rdx, %rcx
    shrq $3, %rcx
    andl $7, %edx
    cmpb $0, {smap}(%rip)
    je 1f
    stac
1:
probe_nfcopy_start:
    rep movsq
    movq %rdx, %rcx
    rep movsb
probe_nfcopy_end:
    xorl %eax, %eax
    jmp probe_clac_ret
probe_nfcopy_fault:
    movl $1, %eax
    jmp probe_clac_ret

    .global hal_probe_touch_write
    // rdi = address: a locked OR of zero, a write that cannot change the
    // byte, even with another CPU writing it at the same time.
hal_probe_touch_write:
    cmpb $0, {smap}(%rip)
    je 1f
    stac
1:
probe_touch_start:
    lock orb $0, (%rdi)
probe_touch_end:
    xorl %eax, %eax
    jmp probe_clac_ret
probe_touch_fault:
    movl $1, %eax
    jmp probe_clac_ret

    .global hal_probe_cmpxchg32
    // rdi = address, esi = expected, edx = new, rcx = where to put the
    // value found; returns 0 (ok) or 1 (faulted). A locked compare-and-
    // exchange on a user word (futex WAKE_OP, robust lists).
hal_probe_cmpxchg32:
    cmpb $0, {smap}(%rip)
    je 1f
    stac
1:
    movl %esi, %eax
probe_cmpxchg_start:
    lock cmpxchgl %edx, (%rdi)
probe_cmpxchg_end:
    movl %eax, (%rcx)
    xorl %eax, %eax
    jmp probe_clac_ret
probe_cmpxchg_fault:
    movl $1, %eax
    jmp probe_clac_ret

    .global hal_probe_ud
hal_probe_ud:
probe_ud_start:
    ud2
probe_ud_end:
    xorl %eax, %eax
    ret
probe_ud_fault:
    movl $1, %eax
    ret
"#,
    smap = sym SMAP_ON,
    options(att_syntax)
);

/// 1 once SMAP is on (every CPU has the same features): the user probes
/// then bracket their access with stac/clac, which would #UD without it.
#[no_mangle]
pub(crate) static SMAP_ON: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// Whether the uaccess probes open a SMAP window.
pub fn smap_on() -> bool {
    SMAP_ON.load(core::sync::atomic::Ordering::Relaxed) != 0
}

extern "C" {
    fn hal_probe_copy(dst: *mut u8, src: *const u8, len: usize) -> u64;
    fn hal_probe_copy_user(dst: *mut u8, src: *const u8, len: usize) -> u64;
    fn hal_probe_copy_user_nofault(dst: *mut u8, src: *const u8, len: usize) -> u64;
    fn hal_probe_ud() -> u64;
    fn hal_probe_touch_write(va: *mut u8) -> u64;
    fn hal_probe_cmpxchg32(va: *mut u32, expected: u32, new: u32, found: *mut u32) -> u64;
    static probe_cmpxchg_start: u8;
    static probe_cmpxchg_end: u8;
    static probe_cmpxchg_fault: u8;
    static probe_touch_start: u8;
    static probe_touch_end: u8;
    static probe_touch_fault: u8;
    static probe_nfcopy_start: u8;
    static probe_nfcopy_end: u8;
    static probe_nfcopy_fault: u8;
    static probe_ucopy_start: u8;
    static probe_ucopy_end: u8;
    static probe_ucopy_fault: u8;
    static probe_copy_start: u8;
    static probe_copy_end: u8;
    static probe_copy_fault: u8;
    static probe_ud_start: u8;
    static probe_ud_end: u8;
    static probe_ud_fault: u8;
}

/// Lowest address outside user space (canonical lower half).
pub const USER_TOP: u64 = 0x0000_8000_0000_0000;

/// A memory access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault;

/// If `frame` faulted inside a probe, redirects it to the probe's recovery
/// path and returns true.
pub fn fixup(frame: &mut crate::idt::TrapFrame) -> bool {
    // SAFETY: only the addresses of the linker symbols are taken.
    let table = unsafe {
        [
            (
                &probe_copy_start as *const u8 as u64,
                &probe_copy_end as *const u8 as u64,
                &probe_copy_fault as *const u8 as u64,
            ),
            (
                &probe_nfcopy_start as *const u8 as u64,
                &probe_nfcopy_end as *const u8 as u64,
                &probe_nfcopy_fault as *const u8 as u64,
            ),
            (
                &probe_ucopy_start as *const u8 as u64,
                &probe_ucopy_end as *const u8 as u64,
                &probe_ucopy_fault as *const u8 as u64,
            ),
            (
                &probe_touch_start as *const u8 as u64,
                &probe_touch_end as *const u8 as u64,
                &probe_touch_fault as *const u8 as u64,
            ),
            (
                &probe_cmpxchg_start as *const u8 as u64,
                &probe_cmpxchg_end as *const u8 as u64,
                &probe_cmpxchg_fault as *const u8 as u64,
            ),
            (
                &probe_ud_start as *const u8 as u64,
                &probe_ud_end as *const u8 as u64,
                &probe_ud_fault as *const u8 as u64,
            ),
        ]
    };
    for (start, end, recover) in table {
        if frame.rip >= start && frame.rip <= end {
            frame.rip = recover;
            return true;
        }
    }
    false
}

/// Whether `rip` is inside the no-fault user copy: a page fault there is
/// not to be resolved, only recovered (the copy returns an error).
pub fn in_nofault_copy(rip: u64) -> bool {
    // SAFETY: only the addresses of the linker symbols are taken.
    let (start, end) = unsafe {
        (
            &probe_nfcopy_start as *const u8 as u64,
            &probe_nfcopy_end as *const u8 as u64,
        )
    };
    rip >= start && rip <= end
}

/// [`copy_from_user`] for a caller holding a spinlock: a page that is
/// not mapped as the access needs (not yet faulted in, copy-on-write)
/// fails the copy instead of being faulted in. The caller then copies
/// the slow way without the lock.
pub fn copy_from_user_nofault(dst: &mut [u8], va: u64) -> Result<(), Fault> {
    if !user_range_ok(va, dst.len()) {
        return Err(Fault);
    }
    // SAFETY: as copy_from_user; a fault is recovered by fixup without
    // being resolved (the trap handler checks in_nofault_copy).
    match unsafe { hal_probe_copy_user_nofault(dst.as_mut_ptr(), va as *const u8, dst.len()) } {
        0 => Ok(()),
        _ => Err(Fault),
    }
}

/// [`copy_to_user`] for a caller holding a spinlock (see
/// [`copy_from_user_nofault`]).
pub fn copy_to_user_nofault(va: u64, src: &[u8]) -> Result<(), Fault> {
    if !user_range_ok(va, src.len()) {
        return Err(Fault);
    }
    // SAFETY: as copy_to_user; a fault is recovered by fixup without
    // being resolved.
    match unsafe { hal_probe_copy_user_nofault(va as *mut u8, src.as_ptr(), src.len()) } {
        0 => Ok(()),
        _ => Err(Fault),
    }
}

fn user_range_ok(va: u64, len: usize) -> bool {
    va.checked_add(len as u64)
        .is_some_and(|end| end <= USER_TOP)
}

/// Copies from user virtual address `va` in the current address space.
/// Fails on any address outside user space or any unmapped page.
pub fn copy_from_user(dst: &mut [u8], va: u64) -> Result<(), Fault> {
    if !user_range_ok(va, dst.len()) {
        return Err(Fault);
    }
    // SAFETY: the source is user memory (checked above); faults are
    // recovered by fixup; the destination is a valid kernel slice.
    match unsafe { hal_probe_copy_user(dst.as_mut_ptr(), va as *const u8, dst.len()) } {
        0 => Ok(()),
        _ => Err(Fault),
    }
}

/// A copy from user memory at least this long first checks that the heap
/// keeps its reserve (`heap::has_room`): smaller ones do not take the
/// heap lock twice.
const BIG_COPY: usize = 64 << 10;

/// Appends `len` bytes from user virtual address `va` to `v`, copied
/// straight into its spare capacity (no zeroing pass over a buffer that
/// the copy overwrites anyway). On a fault `v` keeps its old length; if
/// the heap has no room for `len` more bytes, `Err(None)`.
pub fn append_from_user(
    v: &mut alloc::vec::Vec<u8>,
    va: u64,
    len: usize,
) -> Result<(), Option<Fault>> {
    if !user_range_ok(va, len) {
        return Err(Some(Fault));
    }
    if len >= BIG_COPY && !crate::heap::has_room(len) {
        return Err(None);
    }
    v.try_reserve(len).map_err(|_| None)?;
    let spare = v.spare_capacity_mut();
    // SAFETY: the source is user memory (checked above); faults are
    // recovered by fixup; the destination is `len` bytes of the vector's
    // own spare capacity (reserved above), which nothing else refers to.
    let r = unsafe { hal_probe_copy_user(spare.as_mut_ptr().cast(), va as *const u8, len) };
    if r != 0 {
        return Err(Some(Fault));
    }
    let n = v.len() + len;
    // SAFETY: the copy above initialised the `len` bytes past the old
    // length, within the capacity reserved for them.
    unsafe { v.set_len(n) };
    Ok(())
}

/// Copies to user virtual address `va` in the current address space.
pub fn copy_to_user(va: u64, src: &[u8]) -> Result<(), Fault> {
    if !user_range_ok(va, src.len()) {
        return Err(Fault);
    }
    // SAFETY: the destination is user memory (checked above) and cannot
    // alias kernel objects; faults are recovered by fixup.
    match unsafe { hal_probe_copy_user(va as *mut u8, src.as_ptr(), src.len()) } {
        0 => Ok(()),
        _ => Err(Fault),
    }
}

/// Checks that the user byte at `va` may be written, by a write that
/// leaves it as it is (an atomic OR of zero): a page that is not present
/// or copy-on-write is faulted in as for any write, and a concurrent write
/// by another CPU is never undone.
pub fn touch_user_writable(va: u64) -> Result<(), Fault> {
    if !user_range_ok(va, 1) {
        return Err(Fault);
    }
    // SAFETY: `va` is a user address (checked above), so the locked OR of
    // zero cannot touch kernel memory; faults are recovered by fixup.
    match unsafe { hal_probe_touch_write(va as *mut u8) } {
        0 => Ok(()),
        _ => Err(Fault),
    }
}

/// Atomically replaces the user word at `va` with `new` if it holds
/// `expected`; returns the value it held (equal to `expected` when the
/// exchange happened).
pub fn cmpxchg_user_u32(va: u64, expected: u32, new: u32) -> Result<u32, Fault> {
    if !user_range_ok(va, 4) || !va.is_multiple_of(4) {
        return Err(Fault);
    }
    let mut found = 0u32;
    // SAFETY: `va` is an aligned user address (checked above), so the
    // locked cmpxchg cannot touch kernel memory; faults are recovered by
    // fixup; `found` is a valid kernel out-pointer.
    match unsafe { hal_probe_cmpxchg32(va as *mut u32, expected, new, &mut found) } {
        0 => Ok(found),
        _ => Err(Fault),
    }
}

/// Executes `ud2` on purpose: the invalid-opcode exception must be caught
/// and recovered (kernel self test).
pub fn invalid_opcode() -> Result<(), Fault> {
    // SAFETY: the ud2 inside is covered by the fixup table.
    match unsafe { hal_probe_ud() } {
        0 => Ok(()),
        _ => Err(Fault),
    }
}

/// Reads a byte at an arbitrary kernel address with fault recovery (self
/// tests use it on an unmapped address to take a deliberate #PF).
pub fn read_kernel_byte(va: u64) -> Result<u8, Fault> {
    let mut b = 0u8;
    // SAFETY: reading into a local; a fault is recovered by fixup.
    match unsafe { hal_probe_copy(&mut b, va as *const u8, 1) } {
        0 => Ok(b),
        _ => Err(Fault),
    }
}

/// Touches an unmapped address with no recovery: the unexpected-exception
/// path must report it and exit (self test `selftest=crash`).
pub fn crash() -> ! {
    // SAFETY: deliberately faults; the trap handler never returns here.
    unsafe { core::ptr::read_volatile(0xffff_9000_dead_0000 as *const u8) };
    unreachable!("the read above faults")
}
