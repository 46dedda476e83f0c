//! futex(2) beyond WAIT/WAKE: FUTEX_CMP_REQUEUE / FUTEX_REQUEUE (waiters
//! moved to another word), FUTEX_WAKE_OP (an atomic update of a second
//! word and a conditional wake), and robust lists: a thread or process
//! that dies holding a robust mutex leaves it EOWNERDEAD for the next
//! locker, which wakes if it was waiting; garbage robust lists are
//! survived.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::util::{check, fork, mmap_shared, sleep_ms, sys, wait};

const FUTEX_WAIT: i64 = 0;
const FUTEX_WAKE: i64 = 1;
const FUTEX_REQUEUE: i64 = 3;
const FUTEX_CMP_REQUEUE: i64 = 4;
const FUTEX_WAKE_OP: i64 = 5;
const PRIVATE: i64 = 128;

fn futex(
    w: &AtomicU32,
    op: i64,
    val: i64,
    val2: i64,
    w2: Option<&AtomicU32>,
    val3: i64,
) -> Result<i64, i32> {
    sys(
        libc::SYS_futex,
        [
            w.as_ptr() as i64,
            op | PRIVATE,
            val,
            val2,
            w2.map_or(0, |x| x.as_ptr() as i64),
            val3,
        ],
    )
}

/// Waits (up to 10 s) until `n` threads of this process besides the
/// caller are asleep (state S in /proc/self/task/*/stat).
fn asleep(n: usize) -> Result<(), String> {
    // SAFETY: gettid has no side effects.
    let me = unsafe { libc::syscall(libc::SYS_gettid) }.to_string();
    for _ in 0..1000 {
        let sleeping = std::fs::read_dir("/proc/self/task")
            .map_err(|e| format!("/proc/self/task: {e}"))?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy() != me)
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('S')))
            .count();
        if sleeping >= n {
            return Ok(());
        }
        sleep_ms(10);
    }
    Err(format!("{n} threads never fell asleep in futex_wait"))
}

/// Threads that each wait on `a` while it holds 0, then exit.
fn waiters(a: &Arc<AtomicU32>, n: usize) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || {
                while a.load(Ordering::SeqCst) == 0 {
                    let _ = futex(&a, FUTEX_WAIT, 0, 0, None, 0);
                }
            })
        })
        .collect()
}

fn requeue() -> Result<(), String> {
    let a = Arc::new(AtomicU32::new(0));
    let b = AtomicU32::new(0);
    let hs = waiters(&a, 3);
    asleep(3)?;
    check(
        futex(&a, FUTEX_CMP_REQUEUE, 1, 2, Some(&b), 7) == Err(libc::EAGAIN),
        "CMP_REQUEUE with a stale value: EAGAIN",
    )?;
    let r = futex(&a, FUTEX_CMP_REQUEUE, 1, 2, Some(&b), 0);
    check(
        r == Ok(3),
        format_args!("CMP_REQUEUE: 1 woken + 2 moved to the other word = {r:?}"),
    )?;
    // The moved ones sleep on b now; the woken one may wait on `a` again
    // (it waits until `a` changes), so wake `a` once more after the change.
    a.store(1, Ordering::SeqCst);
    let _ = futex(&a, FUTEX_WAKE, 10, 0, None, 0);
    let r = futex(&b, FUTEX_WAKE, 10, 0, None, 0);
    check(
        r == Ok(2),
        format_args!("a wake on the second word finds the 2 moved: {r:?}"),
    )?;
    for h in hs {
        h.join().map_err(|_| "waiter panicked".to_string())?;
    }
    // Plain REQUEUE: Linux counts the moved ones too (futex(2) says
    // only the woken).
    let a = Arc::new(AtomicU32::new(0));
    let hs = waiters(&a, 2);
    asleep(2)?;
    let r = futex(&a, FUTEX_REQUEUE, 0, 2, Some(&b), 0);
    check(
        r == Ok(2),
        format_args!("REQUEUE of 2, waking none, returns 2: {r:?}"),
    )?;
    a.store(1, Ordering::SeqCst);
    let r = futex(&b, FUTEX_WAKE, 10, 0, None, 0);
    check(
        r == Ok(2),
        format_args!("and both are on the second word: {r:?}"),
    )?;
    for h in hs {
        h.join().map_err(|_| "waiter panicked".to_string())?;
    }
    Ok(())
}

/// FUTEX_OP(op, oparg, cmp, cmparg).
fn wake_op(op: i64, oparg: i64, cmp: i64, cmparg: i64) -> i64 {
    (op << 28) | (cmp << 24) | ((oparg & 0xfff) << 12) | (cmparg & 0xfff)
}

fn wake_op_checks() -> Result<(), String> {
    let a = AtomicU32::new(0);
    let b = Arc::new(AtomicU32::new(5));
    // ADD 3, then compare the old value (5) EQ 5.
    let r = futex(&a, FUTEX_WAKE_OP, 1, 1, Some(&b), wake_op(1, 3, 0, 5));
    check(
        r == Ok(0) && b.load(Ordering::SeqCst) == 8,
        format_args!(
            "WAKE_OP ADD 3 on 5: the word is {} ({r:?})",
            b.load(Ordering::SeqCst)
        ),
    )?;
    // A waiter on b while it is 8; WAKE_OP (OR 16, old EQ 8) wakes it.
    let bw = b.clone();
    let h = std::thread::spawn(move || {
        while bw.load(Ordering::SeqCst) == 8 {
            let _ = futex(&bw, FUTEX_WAIT, 8, 0, None, 0);
        }
    });
    asleep(1)?;
    let r = futex(&a, FUTEX_WAKE_OP, 1, 1, Some(&b), wake_op(2, 16, 0, 8));
    h.join().map_err(|_| "waiter panicked".to_string())?;
    check(
        r == Ok(1) && b.load(Ordering::SeqCst) == 24,
        format_args!("WAKE_OP OR 16 with old == 8 wakes the waiter on the second word ({r:?})"),
    )?;
    // The comparison false: no second wake; SET with OPARG_SHIFT.
    let r = futex(&a, FUTEX_WAKE_OP, 1, 1, Some(&b), wake_op(8, 4, 1, 24));
    check(
        r == Ok(0) && b.load(Ordering::SeqCst) == 16,
        format_args!("WAKE_OP SET 1<<4: {} ({r:?})", b.load(Ordering::SeqCst)),
    )?;
    let r = futex(&a, FUTEX_WAKE_OP, 1, 1, None, wake_op(1, 1, 0, 0));
    check(
        r == Err(libc::EFAULT),
        "WAKE_OP on a null second word: EFAULT",
    )?;
    Ok(())
}

/// A robust (optionally process-shared) mutex in `mem`.
fn robust_mutex(mem: *mut libc::pthread_mutex_t, shared: bool) {
    // SAFETY: mem points at writable memory for one mutex; the attribute
    // object lives on this stack.
    unsafe {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        libc::pthread_mutexattr_init(&mut attr);
        libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
        if shared {
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
        }
        libc::pthread_mutex_init(mem, &attr);
    }
}

struct SendPtr(*mut libc::pthread_mutex_t);
// SAFETY: the mutex is made for sharing between threads.
unsafe impl Send for SendPtr {}

fn robust() -> Result<(), String> {
    // A thread dies holding it while this one waits in lock.
    let m = Box::into_raw(Box::new(unsafe {
        std::mem::zeroed::<libc::pthread_mutex_t>()
    }));
    robust_mutex(m, false);
    let (tx, rx) = std::sync::mpsc::channel();
    let p = SendPtr(m);
    let h = std::thread::spawn(move || {
        let p = p;
        // SAFETY: the mutex was initialised above.
        unsafe { libc::pthread_mutex_lock(p.0) };
        let _ = tx.send(());
        std::thread::sleep(Duration::from_millis(300));
        // Ends holding the lock.
    });
    rx.recv().map_err(|e| e.to_string())?;
    // SAFETY: the mutex is initialised; it is locked by the other thread.
    let r = unsafe { libc::pthread_mutex_lock(m) };
    h.join().map_err(|_| "owner panicked".to_string())?;
    check(
        r == libc::EOWNERDEAD,
        format_args!(
            "a thread dies holding a robust mutex: the waiting locker gets EOWNERDEAD ({r})"
        ),
    )?;
    // SAFETY: we hold it (EOWNERDEAD means the lock was acquired).
    unsafe {
        libc::pthread_mutex_consistent(m);
        libc::pthread_mutex_unlock(m);
    }

    // Process-shared: a child dies holding it.
    let mem = mmap_shared(4096)
        .map_err(|e| format!("mmap: {e}"))?
        .cast::<libc::pthread_mutex_t>();
    robust_mutex(mem, true);
    let pid = fork()?;
    if pid == 0 {
        // SAFETY: the shared mutex is initialised.
        unsafe { libc::pthread_mutex_lock(mem) };
        crate::util::child_exit(0);
    }
    wait(pid)?;
    // SAFETY: as above.
    let r = unsafe { libc::pthread_mutex_lock(mem) };
    check(
        r == libc::EOWNERDEAD,
        format_args!("a process dies holding a shared robust mutex: EOWNERDEAD ({r})"),
    )?;

    // Bad lists: a length other than the head's, garbage heads, a cycle.
    check(
        sys(libc::SYS_set_robust_list, [0, 23, 0, 0, 0, 0]) == Err(libc::EINVAL),
        "set_robust_list with a wrong length: EINVAL",
    )?;
    let (mut head, mut len) = (0u64, 0u64);
    let r = sys(
        libc::SYS_get_robust_list,
        [
            0,
            &mut head as *mut u64 as i64,
            &mut len as *mut u64 as i64,
            0,
            0,
            0,
        ],
    );
    check(
        r.is_ok() && head != 0 && len == 24,
        format_args!("get_robust_list: glibc's head {head:#x}, length {len}"),
    )?;
    for what in ["unmapped", "kernel", "cycle"] {
        let h = std::thread::spawn(move || {
            let cyc: Box<[u64; 3]> = Box::new([0; 3]);
            let p = Box::into_raw(cyc);
            // SAFETY: p is ours; a list whose entry points at itself
            // (not at the head) loops forever unless the walk is bounded.
            unsafe { (*p)[0] = p as u64 + 24 };
            let entry = Box::into_raw(Box::new(0u64));
            // SAFETY: the entry points at itself.
            unsafe { *entry = entry as u64 };
            // SAFETY: as above.
            unsafe { (*p)[0] = entry as u64 };
            let head = match what {
                "unmapped" => 0x1000,
                "kernel" => 0xffff_ffff_8000_0000u64 as i64,
                _ => p as i64,
            };
            sys(libc::SYS_set_robust_list, [head, 24, 0, 0, 0, 0]).is_ok()
        });
        let ok = h.join().map_err(|_| "thread panicked".to_string())?;
        check(
            ok,
            format_args!("a thread exits with a {what} robust list; the kernel lives"),
        )?;
    }
    Ok(())
}

pub fn run(_: &[String]) -> Result<(), String> {
    requeue()?;
    wake_op_checks()?;
    robust()
}
