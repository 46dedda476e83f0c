//! `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp` for the compiler.
//!
//! The precompiled `compiler_builtins` we link against is built without its
//! `mem` feature, so these symbols must come from us. They are written with
//! `rep movsq`/`rep stosq` for the bulk and `rep movsb`/`rep stosb` for the
//! tail (as fast as ERMS `rep movsb` on real CPUs, an eighth of the
//! iterations where each one costs, as under QEMU's TCG and `-icount`; and
//! impossible for LLVM to turn back into calls to themselves) and a plain
//! byte loop for the comparisons, guarded against loop-idiom recognition by
//! `read_volatile`.

use core::arch::asm;

/// # Safety
/// Standard C `memcpy` contract: non-overlapping valid ranges of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid and disjoint;
    // the quadword pass copies n & !7 bytes, the byte pass the rest.
    unsafe {
        asm!("rep movsq", "mov rcx, {tail}", "rep movsb",
             tail = in(reg) n & 7,
             inout("rcx") n / 8 => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// Standard C `memmove` contract: valid ranges of `n` bytes, may overlap.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: a forward copy is correct when dst does not start inside src.
        unsafe { memcpy(dst, src, n) };
    } else {
        // SAFETY: copy backwards (std sets DF, cld restores it) so the
        // overlapping tail is read before it is overwritten.
        unsafe {
            asm!("std", "rep movsb", "cld",
                 inout("rcx") n => _,
                 inout("rdi") dst.add(n - 1) => _,
                 inout("rsi") src.add(n - 1) => _,
                 options(nostack));
        }
    }
    dst
}

/// # Safety
/// Standard C `memset` contract: `dst` valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    let pattern = (c as u8 as u64).wrapping_mul(0x0101_0101_0101_0101);
    // SAFETY: the caller guarantees dst is valid for n bytes; the quadword
    // pass fills n & !7 bytes, the byte pass (low byte of rax) the rest.
    unsafe {
        asm!("rep stosq", "mov rcx, {tail}", "rep stosb",
             tail = in(reg) n & 7,
             inout("rcx") n / 8 => _, inout("rdi") dst => _, in("rax") pattern,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// Standard C `memcmp` contract: both pointers valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and both ranges are valid for n bytes.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// # Safety
/// Same contract as [`memcmp`].
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}

/// The shipped `core` is built for unwinding and references this symbol;
/// with `panic = "abort"` it is never called.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// The shipped `alloc` has landing pads that call this; with
/// `panic = "abort"` no unwinding ever starts, so it is unreachable.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::cpu::halt_forever()
}
