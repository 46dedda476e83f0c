//! The task a CPU is running, readable without a lock: the scheduler
//! installs an `Arc<T>`, and any code on that CPU (syscalls, interrupt
//! handlers) takes a new reference with one atomic increment.
//!
//! Why it lives here: a lock-free `current` needs a raw pointer made from
//! an `Arc` and turned back into one, which only this crate may do. The
//! proof is local: the slot owns one strong count of the installed value,
//! and both [`CpuCurrent::replace`] and [`CpuCurrent::get`] run with
//! interrupts off on the slot's own CPU (the first `replace` binds the slot
//! to its CPU; use from any other CPU panics), so a `get` can never see a
//! pointer whose count a concurrent `replace` has already given away.

use alloc::sync::Arc;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

const UNBOUND: usize = usize::MAX;

/// One CPU's current task.
pub struct CpuCurrent<T> {
    ptr: AtomicPtr<T>,
    /// The CPU this slot belongs to (UNBOUND until the first replace).
    cpu: AtomicUsize,
    /// A [`CpuCurrent::with`] is lending out the installed task.
    lent: AtomicBool,
    _owns: PhantomData<Arc<T>>,
}

impl<T> CpuCurrent<T> {
    /// An empty slot, bound to the CPU that first installs a task.
    pub const fn new() -> Self {
        CpuCurrent {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
            cpu: AtomicUsize::new(UNBOUND),
            lent: AtomicBool::new(false),
            _owns: PhantomData,
        }
    }

    /// Panics unless called on the slot's CPU (binding an unbound slot).
    #[inline]
    fn check_cpu(&self) {
        let me = crate::percpu::cpu_id();
        let owner = self.cpu.load(Ordering::Relaxed);
        if owner == me {
            return;
        }
        let bound = owner == UNBOUND
            && self
                .cpu
                .compare_exchange(UNBOUND, me, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        assert!(bound, "CpuCurrent used from another CPU");
    }

    /// Installs `new` and hands back the previous task (with the strong
    /// count the slot held).
    pub fn replace(&self, new: Option<Arc<T>>) -> Option<Arc<T>> {
        let raw = new.map_or(core::ptr::null_mut(), |a| Arc::into_raw(a).cast_mut());
        let old = crate::cpu::without_interrupts(|| {
            self.check_cpu();
            // The task lent to a `with` must outlive the loan.
            assert!(
                !self.lent.load(Ordering::Relaxed),
                "CpuCurrent::replace during a with"
            );
            self.ptr.swap(raw, Ordering::AcqRel)
        });
        if old.is_null() {
            None
        } else {
            // SAFETY: `old` came from Arc::into_raw in an earlier replace,
            // and the slot's strong count is handed over exactly once here.
            Some(unsafe { Arc::from_raw(old) })
        }
    }

    /// Runs `f` on the installed task without taking a reference (the
    /// cheapest way to read a field of the running task: no count to add
    /// and drop). Interrupts stay off during `f`, and a `replace` inside
    /// `f` panics, so the task cannot go away under the borrow.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        crate::cpu::without_interrupts(|| {
            self.check_cpu();
            let p = self.ptr.load(Ordering::Acquire);
            self.lent.store(true, Ordering::Relaxed);
            // SAFETY: the slot holds a strong count of `p` (when not null)
            // until a replace; none can run on this CPU with interrupts
            // off except from `f`, where it panics while `lent` is set;
            // other CPUs cannot use this slot (check_cpu). So the value
            // outlives the borrow handed to `f`.
            let r = f(unsafe { p.as_ref() });
            self.lent.store(false, Ordering::Relaxed);
            r
        })
    }

    /// Switches this CPU from the running context, published into `save`,
    /// to the installed task's context, claimed from the slot `slot` picks
    /// in it (or from `none` when no task is installed: the idle context).
    /// Returns when the saved context is resumed, on whatever CPU.
    ///
    /// Why here: the slot must outlive the switch, and only this type
    /// knows its task cannot go away before the new context runs.
    pub fn switch_to_installed(
        &self,
        save: &AtomicU64,
        slot: impl FnOnce(&T) -> &AtomicU64,
        none: &AtomicU64,
    ) {
        assert!(
            !crate::cpu::interrupts_enabled(),
            "context switch with interrupts on"
        );
        self.check_cpu();
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: the slot holds a strong count of `p` (when not null)
        // until the next `replace`, which runs on this CPU only (check_cpu)
        // and, with interrupts off, not before the switch has loaded the
        // new context (after which the slot is no longer read). So the
        // reference is valid for as long as `switch` reads through it.
        let next = match unsafe { p.as_ref() } {
            Some(t) => slot(t),
            None => none,
        };
        crate::context::switch(save, next);
    }

    /// A new reference to the installed task.
    #[inline]
    pub fn get(&self) -> Option<Arc<T>> {
        crate::cpu::without_interrupts(|| {
            self.check_cpu();
            let p = self.ptr.load(Ordering::Acquire);
            if p.is_null() {
                return None;
            }
            // SAFETY: the slot holds a strong count of `p` until a replace,
            // and no replace can run in between: interrupts are off and
            // only this CPU touches its slot (module doc). So the value is
            // alive while we add our own count.
            unsafe {
                Arc::increment_strong_count(p);
                Some(Arc::from_raw(p))
            }
        })
    }
}

impl<T> Default for CpuCurrent<T> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: the slot only hands out Arc<T> clones, which are Send + Sync
// when T is Send + Sync.
unsafe impl<T: Send + Sync> Sync for CpuCurrent<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for CpuCurrent<T> {}

impl<T> Drop for CpuCurrent<T> {
    fn drop(&mut self) {
        let old = *self.ptr.get_mut();
        if !old.is_null() {
            // SAFETY: we own the slot exclusively; its strong count of
            // `old` is released exactly once.
            drop(unsafe { Arc::from_raw(old) });
        }
    }
}
