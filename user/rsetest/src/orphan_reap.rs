//! Orphans that exit while their parent exits are reparented to init and
//! reaped: none stays a zombie because init slept through its exit.
//! (The scenario's init is the shell, which reaps every child it is told
//! of.)

use crate::say;
use crate::util::{fork, wait_quiet};

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

/// `orphan_reap [ROUNDS]`
pub fn run(args: &[String]) -> Result<(), String> {
    let rounds = args.first().and_then(|a| a.parse().ok()).unwrap_or(ROUNDS);
    let (r, w) = crate::util::pipe()?;
    // The orphans exit when their parent does, so that their exits and
    // its reparenting of them overlap: each blocks reading a pipe whose
    // only writer is the parent, whose exit closes it (just before the
    // parent tears down its memory and hands its children to init).
    let mut reaped = 0;
    for round in 0..rounds {
        let pid = fork()?;
        if pid == 0 {
            let Ok((er, ew)) = crate::util::pipe() else {
                crate::util::child_exit(1)
            };
            for _ in 0..KIDS {
                match fork() {
                    Ok(0) => {
                        // SAFETY: closing our copy of the write end; reading
                        // one byte into a local until EOF.
                        unsafe {
                            libc::close(ew);
                            let mut b = 0u8;
                            libc::read(er, (&raw mut b).cast(), 1);
                        }
                        crate::util::child_exit(0)
                    }
                    Ok(k) => crate::util::write_all(w, &k.to_le_bytes()),
                    Err(_) => crate::util::write_all(w, &0i32.to_le_bytes()),
                }
            }
            crate::util::child_exit(0);
        }
        wait_quiet(pid, "parent of orphans")?;
        let mut kids = Vec::new();
        for _ in 0..KIDS {
            let mut b = [0u8; 4];
            // SAFETY: b is a valid 4-byte buffer.
            if unsafe { libc::read(r, b.as_mut_ptr().cast(), 4) } != 4 {
                break;
            }
            kids.push(i32::from_le_bytes(b));
        }
        // Checked every round: a lost wake-up shows only until the next
        // orphan's exit wakes init, which then reaps every zombie it has.
        let t0 = std::time::Instant::now();
        let mut left = zombies_of_init(&kids);
        while !left.is_empty() && t0.elapsed().as_millis() < 2000 {
            crate::util::sleep_ms(1);
            left = zombies_of_init(&kids);
        }
        if !left.is_empty() {
            return Err(format!(
                "round {round}: {} orphan zombies not reaped by init after 2 s: {:?}",
                left.len(),
                &left[..left.len().min(3)]
            ));
        }
        reaped += kids.len();
    }
    say!("ok: {reaped} orphans exiting with their parent were all reaped");
    Ok(())
}
