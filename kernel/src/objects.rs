//! Live kernel object counts, for leak checks: `/proc/kobjects` prints
//! them with the kernel heap in use and the free frames, so a test can
//! take a baseline, run a workload, and check every count came back once
//! its processes are gone (the `kobjects_return_to_baseline` scenario).
//! The heap's growth shows too: `heap_claimed` bytes in `heap_spans`
//! spans, up to `heap_limit`, grown `heap_grown` times (`heap_grow_failed`
//! when no growth was possible), with `heap_frames` frames taken from the
//! pools for good (a leak check adds them to `free_frames`).
//!
//! An object counts itself: it holds a [`Live`] that increments its kind's
//! counter when made and decrements it when dropped, so the count is the
//! number of such objects in memory, whoever still references them.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicI64, Ordering};

/// Kinds of counted objects.
#[derive(Clone, Copy)]
#[repr(usize)]
pub enum Obj {
    /// `Process` structures (one per thread, zombies included).
    Task,
    /// Address spaces (`Mm`).
    AddressSpace,
    /// Open file descriptions (`OpenFile`), of every kind.
    OpenFile,
    /// Open file descriptions that are sockets.
    SocketFile,
    /// Pipe objects.
    Pipe,
}

const KINDS: usize = 5;
static COUNTS: [AtomicI64; KINDS] = [const { AtomicI64::new(0) }; KINDS];

/// A counted object's token: counts one `Obj` while it lives.
pub struct Live(Obj);

impl Live {
    /// Counts one more object of kind `k`.
    pub fn new(k: Obj) -> Live {
        COUNTS[k as usize].fetch_add(1, Ordering::Relaxed);
        Live(k)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        COUNTS[self.0 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

fn count(k: Obj) -> i64 {
    COUNTS[k as usize].load(Ordering::Relaxed)
}

/// The text of `/proc/kobjects`: one `name value` line each.
pub fn procfs() -> String {
    let (threads, processes) = crate::proc::table_counts();
    let (grown, failed) = hal::heap::grow_counts();
    let (shrunk, shrunk_bytes, refused) = hal::heap::shrink_counts();
    let free: usize = (0..crate::frames::torus_count())
        .map(|t| crate::frames::stats(t).0)
        .sum();
    format!(
        "processes {processes}\nthreads {threads}\ntasks {}\naddress_spaces {}\n\
         kernel_stacks {}\nopen_files {}\nsockets {}\npipes {}\nfutex_waiters {}\n\
         heap_bytes {}\nfree_frames {free}\nheap_claimed {}\nheap_limit {}\nheap_spans {}\n\
         heap_grown {grown}\nheap_grow_failed {failed}\nheap_shrunk {shrunk}\n\
         heap_shrunk_bytes {shrunk_bytes}\nheap_give_back_refused {refused}\nheap_frames {}\n\
         kstack_max_used {}\n",
        count(Obj::Task),
        count(Obj::AddressSpace),
        hal::guard::stacks_live(),
        count(Obj::OpenFile),
        count(Obj::SocketFile),
        count(Obj::Pipe),
        crate::syscall::futex::waiters(),
        hal::heap::used(),
        hal::heap::claimed(),
        hal::heap::size(),
        hal::heap::spans(),
        hal::heap::grow_frames(),
        hal::context::stack_max_used(),
    )
}
