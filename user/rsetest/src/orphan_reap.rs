//! Orphans that exit while their parent exits are reparented to init and
//! reaped: none stays a zombie because init slept through its exit.
//! (The scenario's init is the shell, which reaps every child it is told
//! of.)

use crate::say;
use crate::util::{check, fork, wait_quiet};

const ROUNDS: usize = 150;
const KIDS: usize = 6;

/// Which of `pids` are zombies whose parent is init.
fn zombies_of_init(pids: &[i32]) -> Vec<String> {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter(|s| {
            // pid (comm) state ppid ...
            let rest = s.rsplit_once(") ").map_or("", |(_, r)| r);
            let mut f = rest.split(' ');
            f.next() == Some("Z") && f.next() == Some("1")
        })
        .collect()
}

pub fn run(_: &[String]) -> Result<(), String> {
    let (r, w) = crate::util::pipe()?;
    // The orphans exit when their parent does, so that their exits and
    // its reparenting of them overlap.
    let flag = crate::util::mmap_shared(4096).map_err(crate::util::errname)?;
    // SAFETY: a live shared page, used as one atomic word.
    let go = unsafe { &*(flag as *const std::sync::atomic::AtomicU32) };
    let mut orphans = Vec::new();
    for _ in 0..ROUNDS {
        go.store(0, std::sync::atomic::Ordering::SeqCst);
        let pid = fork()?;
        if pid == 0 {
            for _ in 0..KIDS {
                match fork() {
                    Ok(0) => {
                        let t0 = std::time::Instant::now();
                        while go.load(std::sync::atomic::Ordering::SeqCst) == 0
                            && t0.elapsed().as_millis() < 500
                        {
                            std::hint::spin_loop();
                        }
                        crate::util::child_exit(0)
                    }
                    Ok(k) => crate::util::write_all(w, &k.to_le_bytes()),
                    Err(_) => crate::util::write_all(w, &0i32.to_le_bytes()),
                }
            }
            go.store(1, std::sync::atomic::Ordering::SeqCst);
            crate::util::child_exit(0);
        }
        wait_quiet(pid, "parent of orphans")?;
        for _ in 0..KIDS {
            let mut b = [0u8; 4];
            // SAFETY: b is a valid 4-byte buffer.
            if unsafe { libc::read(r, b.as_mut_ptr().cast(), 4) } != 4 {
                break;
            }
            orphans.push(i32::from_le_bytes(b));
        }
    }
    // Init reaps what it is woken for; give it a moment.
    let mut left = Vec::new();
    for _ in 0..20 {
        crate::util::sleep_ms(100);
        left = zombies_of_init(&orphans);
        if left.is_empty() {
            break;
        }
    }
    check(
        left.is_empty(),
        format_args!(
            "{} orphan zombies never reaped by init: {:?}",
            left.len(),
            &left[..left.len().min(3)]
        ),
    )?;
    say!(
        "ok: {} orphans exiting with their parent were all reaped",
        ROUNDS * KIDS
    );
    Ok(())
}
