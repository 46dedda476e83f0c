//! The alternate signal stack of a thread (`sigaltstack(2)`), where
//! handlers installed with SA_ONSTACK run: a program whose stack
//! overflowed can still take its SIGSEGV (Rust's runtime and glibc's
//! stack-overflow reports depend on it).

use abi::{Errno, KResult};

use crate::uaccess;

/// `ss_flags`: the thread is running on the alternate stack.
pub const SS_ONSTACK: u32 = 1;
/// `ss_flags`: no alternate stack.
pub const SS_DISABLE: u32 = 2;
/// `ss_flags` modifier: disarm the stack while a handler runs on it.
pub const SS_AUTODISARM: u32 = 1 << 31;
/// Smallest stack accepted (Linux's MINSIGSTKSZ for x86_64).
pub const MINSIGSTKSZ: u64 = 2048;

/// `stack_t`: ss_sp, ss_flags (and padding), ss_size.
pub const STACK_T_SIZE: usize = 24;

/// A thread's alternate stack; `size == 0` means none.
#[derive(Clone, Copy, Debug, Default)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    /// SS_AUTODISARM or 0.
    pub flags: u32,
}

impl AltStack {
    /// Whether user stack pointer `rsp` is on this stack (Linux's
    /// on_sig_stack: an auto-disarmed stack never counts, since the
    /// handler on it may install a new one).
    pub fn contains(&self, rsp: u64) -> bool {
        self.flags & SS_AUTODISARM == 0
            && self.size != 0
            && rsp > self.sp
            && rsp - self.sp <= self.size
    }

    /// `ss_flags` as sigaltstack reports it for a thread at `rsp`.
    pub fn flags_at(&self, rsp: u64) -> u32 {
        if self.size == 0 {
            SS_DISABLE | self.flags
        } else if self.contains(rsp) {
            SS_ONSTACK | self.flags
        } else {
            self.flags
        }
    }

    /// `stack_t` as the user sees it from `rsp`.
    pub fn to_user(self, rsp: u64) -> [u8; STACK_T_SIZE] {
        let mut b = [0u8; STACK_T_SIZE];
        b[..8].copy_from_slice(&self.sp.to_le_bytes());
        b[8..12].copy_from_slice(&self.flags_at(rsp).to_le_bytes());
        b[16..].copy_from_slice(&self.size.to_le_bytes());
        b
    }

    /// The stack that replaces this one when a `stack_t` asks for it, by
    /// Linux's rules (do_sigaltstack),
    /// for a thread at `rsp`: EPERM while running on the current one,
    /// EINVAL for unknown flags, ENOMEM below MINSIGSTKSZ.
    pub fn replaced_by(&self, b: &[u8; STACK_T_SIZE], rsp: u64) -> KResult<AltStack> {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let flags = u32::from_le_bytes(b[8..12].try_into().unwrap_or([0; 4]));
        if self.contains(rsp) {
            return Err(Errno::EPERM);
        }
        match flags & !SS_AUTODISARM {
            SS_DISABLE => Ok(AltStack {
                flags: flags & SS_AUTODISARM,
                ..AltStack::default()
            }),
            0 | SS_ONSTACK => {
                let size = u64_at(16);
                if size < MINSIGSTKSZ {
                    return Err(Errno::ENOMEM);
                }
                Ok(AltStack {
                    sp: u64_at(0),
                    size,
                    flags: flags & SS_AUTODISARM,
                })
            }
            _ => Err(Errno::EINVAL),
        }
    }
}

/// `sigaltstack(2)` for the current thread, whose user stack pointer is
/// `rsp`.
pub fn sigaltstack(uss: u64, uoss: u64, rsp: u64) -> KResult<u64> {
    let me = super::sched::current();
    let old = me.sig.lock().altstack;
    if uss != 0 {
        let mut b = [0u8; STACK_T_SIZE];
        uaccess::copy_in(uss, &mut b)?;
        let new = old.replaced_by(&b, rsp)?;
        me.sig.lock().altstack = new;
    }
    if uoss != 0 {
        uaccess::copy_out(uoss, &old.to_user(rsp))?;
    }
    Ok(0)
}

/// rt_sigreturn's restore of the stack saved in the frame (`uc_stack`):
/// as on Linux, only a fault reading it fails the return; a stack the
/// rules refuse leaves the current one.
pub fn restore(b: &[u8; STACK_T_SIZE], rsp: u64) {
    let me = super::sched::current();
    let mut s = me.sig.lock();
    if let Ok(new) = s.altstack.replaced_by(b, rsp) {
        s.altstack = new;
    }
}
