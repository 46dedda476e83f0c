//! The fault schedule of `cargo xtask cluster`: what happens to which
//! node, how long after every node has booted.
//!
//! `--kill K@S` SIGKILLs node K's QEMU (the machine dies
//! mid-instruction); `--revive K@S` boots node K again (a fresh machine
//! with the same address, which must rejoin the ring); `--partition
//! K@S[+D]` takes node K's tap off the bridge (its frames go nowhere and
//! none reach it) and, with `+D`, puts it back D seconds later.

/// One thing done to a node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    Kill,
    Revive,
    Partition,
    Heal,
}

/// A fault: `action` on `node`, `at` seconds after every node booted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fault {
    pub node: usize,
    pub at: f64,
    pub action: Action,
}

fn parse_time(t: &str, bad: &dyn Fn() -> String) -> Result<f64, String> {
    let t: f64 = t.parse().map_err(|_| bad())?;
    if t.is_finite() && t >= 0.0 {
        Ok(t)
    } else {
        Err(bad())
    }
}

/// Parses the value of `--kill`/`--revive` (`NODE@SECONDS`) or
/// `--partition` (`NODE@SECONDS[+DURATION]`, which gives two faults).
pub fn parse(option: &str, s: &str) -> Result<Vec<Fault>, String> {
    let partition = option == "--partition";
    let bad = || {
        let form = if partition {
            "NODE@SECONDS[+DURATION]"
        } else {
            "NODE@SECONDS"
        };
        format!("{option} {s:?}: expected {form}")
    };
    let (n, t) = s.split_once('@').ok_or_else(bad)?;
    let node: usize = n.parse().map_err(|_| bad())?;
    let (t, d) = match t.split_once('+') {
        Some((t, d)) if partition => (t, Some(d)),
        Some(_) => return Err(bad()),
        None => (t, None),
    };
    let at = parse_time(t, &bad)?;
    let action = match option {
        "--kill" => Action::Kill,
        "--revive" => Action::Revive,
        _ => Action::Partition,
    };
    let mut v = vec![Fault { node, at, action }];
    if let Some(d) = d {
        v.push(Fault {
            node,
            at: at + parse_time(d, &bad)?,
            action: Action::Heal,
        });
    }
    Ok(v)
}

/// Checks a schedule against a cluster of `nodes`: every node exists,
/// node 0 (the console) is only killed, and per node the faults make
/// sense in time order (a revive follows a kill, a heal a partition; no
/// partition of a dead node).
pub fn check(faults: &[Fault], nodes: usize) -> Result<(), String> {
    let mut sorted = faults.to_vec();
    sorted.sort_by(|a, b| a.at.total_cmp(&b.at));
    let mut dead = vec![false; nodes];
    let mut cut = vec![false; nodes];
    for f in &sorted {
        let k = f.node;
        if k >= nodes {
            return Err(format!("{:?} of node {k}: there is no node {k}", f.action));
        }
        let ok = match f.action {
            Action::Kill => !dead[k],
            Action::Revive => k != 0 && dead[k],
            Action::Partition => k != 0 && !dead[k] && !cut[k],
            Action::Heal => cut[k],
        };
        if !ok {
            return Err(format!(
                "{:?} of node {k} at {} s does not fit the schedule (node 0 can only be killed; a revive needs a kill before it, a partition a live connected node)",
                f.action, f.at
            ));
        }
        match f.action {
            Action::Kill => {
                dead[k] = true;
                cut[k] = false;
            }
            Action::Revive => dead[k] = false,
            Action::Partition => cut[k] = true,
            Action::Heal => cut[k] = false,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(
            parse("--kill", "1@10").unwrap(),
            vec![Fault {
                node: 1,
                at: 10.0,
                action: Action::Kill
            }]
        );
        let p = parse("--partition", "2@4.5+3").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].action, p[1].at), (Action::Heal, 7.5));
        assert_eq!(parse("--partition", "2@4").unwrap().len(), 1);
        for (o, s) in [
            ("--kill", "1@"),
            ("--kill", "x@1"),
            ("--revive", "1@2+3"),
            ("--kill", "1@-1"),
            ("--partition", "1@2+inf"),
        ] {
            assert!(parse(o, s).is_err(), "{o} {s}");
        }
    }

    #[test]
    fn checks_the_order() {
        let f = |s: &[(&str, &str)]| -> Vec<Fault> {
            s.iter().flat_map(|(o, v)| parse(o, v).unwrap()).collect()
        };
        assert!(check(&f(&[("--kill", "1@5"), ("--revive", "1@9")]), 3).is_ok());
        assert!(check(&f(&[("--revive", "1@9"), ("--kill", "1@5")]), 3).is_ok());
        assert!(check(&f(&[("--revive", "1@9")]), 3).is_err());
        assert!(check(&f(&[("--kill", "0@5"), ("--revive", "0@9")]), 3).is_err());
        assert!(check(&f(&[("--kill", "3@5")]), 3).is_err());
        assert!(check(&f(&[("--partition", "2@5+3")]), 3).is_ok());
        assert!(check(&f(&[("--partition", "0@5+3")]), 3).is_err());
        assert!(check(&f(&[("--kill", "2@1"), ("--partition", "2@5")]), 3).is_err());
    }
}
