//! A CLONE_VM child's first run writes its CLONE_CHILD_SETTID word into a
//! page not yet faulted in while the parent keeps changing the shared
//! mappings (mmap, touch, munmap: a TLB shootdown each). The fault is
//! taken in the kernel, on the child's way to user mode; it must neither
//! deadlock against the parent's shootdown nor lose the tid.

use crate::say;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::shared_vm::{clone_vm_with, mmap_pages, mmap_stack, CLONE_CHILD_SETTID};
use crate::util::{status_str, wait};

extern "C" fn quit(_: u64) -> i32 {
    0
}

const ROUNDS: usize = 300;

pub fn run(_: &[String]) -> Result<(), String> {
    let stack = mmap_stack()?;
    for round in 0..ROUNDS {
        // A fresh page for the tid, not touched by us.
        let tid_page = mmap_pages(1)?;
        let pid = clone_vm_with(CLONE_CHILD_SETTID, quit, 0, stack, tid_page)?;
        for _ in 0..8 {
            let p = mmap_pages(4)?;
            for i in 0..4 {
                // SAFETY: our own fresh mapping.
                unsafe { *((p + i * 4096) as *mut u64) = i };
            }
            // SAFETY: unmapping our own mapping.
            unsafe { libc::munmap(p as *mut libc::c_void, 4 * 4096) };
        }
        let st = wait(pid)?;
        if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
            return Err(format!("round {round}: child {}", status_str(st)));
        }
        // SAFETY: mapped above; the child wrote it before its first
        // instruction in user mode.
        let tid = unsafe { &*(tid_page as *const AtomicU64) }.load(Ordering::SeqCst) as u32;
        if tid != pid as u32 {
            return Err(format!(
                "round {round}: CLONE_CHILD_SETTID word {tid}, child {pid}"
            ));
        }
        // SAFETY: our own mapping.
        unsafe { libc::munmap(tid_page as *mut libc::c_void, 4096) };
    }
    say!("ok: {ROUNDS} CLONE_VM children set their tid during shootdowns");
    Ok(())
}
