//! Debian's lighttpd, unmodified and with Debian's own configuration,
//! serving a file tree to the host through a forwarded port; the host's
//! `curl` checks what a user would: byte-identical files (small, 1 MiB,
//! 100 MiB), a directory listing, 404, a range request and keep-alive.
//!
//! lighttpd runs as Debian starts it (`lighttpd -D -f
//! /etc/lighttpd/lighttpd.conf`, as root, dropping to www-data), with
//! the two modules enabled as `lighty-enable-mod` would (symlinks): the
//! access log and directory listings. Debian's configuration runs two
//! perl helpers (`include_shell`), hence perl-base, which every Debian
//! system has (it is Essential, so lighttpd does not depend on it). The host asks for `/done` last; the guest
//! sees it in the access log, stops lighttpd with SIGTERM and checks that
//! it exits cleanly.

use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use crate::artifacts::Addition;
use crate::qemu;
use crate::RunOpts;

const GUEST_SCRIPT: &str = r#"
set -e
mkdir -p /var/www/html/dir
cd /etc/lighttpd/conf-enabled
ln -s ../conf-available/10-accesslog.conf .
ln -s ../conf-available/10-dir-listing.conf .
cd /var/www/html
cp /etc/rse/http/index.html /etc/rse/http/one.bin .
for i in $(seq 100); do cat one.bin; done > big.bin
echo a > dir/alpha.txt
echo b > dir/beta.txt
set +e
i=0
until grep -q '^eth0' /proc/net/route; do
  i=$((i+1)); [ $i -gt 600 ] && { echo NO LEASE; exit 3; }; sleep 0.1
done
lighttpd -D -f /etc/lighttpd/lighttpd.conf &
pid=$!
i=0
until grep -q 'server started' /var/log/lighttpd/error.log 2>/dev/null; do
  i=$((i+1)); [ $i -gt 600 ] && { echo NOT STARTED; exit 5; }; sleep 0.1
done
echo SERVING
grep -E '^(Uid|Gid):' /proc/$pid/status | sed 's/^/LIGHTTPD /'
i=0
until grep -q 'GET /done' /var/log/lighttpd/access.log 2>/dev/null; do
  i=$((i+1)); [ $i -gt 3000 ] && { echo NO DONE; kill $pid; exit 4; }; sleep 0.1
done
kill -TERM $pid
wait $pid
echo "LIGHTTPD STATUS $?"
echo "REQUESTS $(wc -l < /var/log/lighttpd/access.log)"
cat /var/log/lighttpd/error.log
"#;

/// The files the host puts into the guest and expects back.
struct Tree {
    dir: PathBuf,
    index: Vec<u8>,
    one: Vec<u8>,
}

impl Tree {
    fn make() -> Result<Tree, String> {
        let dir = crate::artifacts::out_dir().join(format!("http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let index = format!(
            "<html><body><h1>RSE OS</h1><p>served by Debian's lighttpd, host pid {}</p></body></html>\n",
            std::process::id()
        )
        .into_bytes();
        // 1 MiB that no compression or short pattern can fake.
        let one =
            crate::artifacts::noise(1 << 20, 0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64);
        for (name, data) in [("index.html", &index), ("one.bin", &one)] {
            std::fs::write(dir.join(name), data).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(Tree { dir, index, one })
    }

    fn additions(&self) -> Vec<Addition> {
        ["index.html", "one.bin"]
            .iter()
            .map(|n| Addition {
                host: self.dir.join(n),
                guest: format!("/etc/rse/http/{n}"),
            })
            .collect()
    }
}

/// `curl` with the usual test flags; stdout as bytes, stderr as text.
fn curl(args: &[&str]) -> Result<(Vec<u8>, String), String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "120"])
        .args(args)
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("curl {args:?}: {} {err}", out.status));
    }
    Ok((out.stdout, err))
}

/// What the host checks, in order; the first difference is the error.
fn host_checks(port: u16, tree: &Tree) -> Result<(), String> {
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let same = |what: &str, got: &[u8], want: &[u8]| {
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{what}: got {} bytes, want {} (first difference at {:?})",
                got.len(),
                want.len(),
                got.iter().zip(want).position(|(a, b)| a != b)
            ))
        }
    };
    let (body, _) = curl(&[&url("/")])?;
    same("GET / (index.html)", &body, &tree.index)?;
    let (body, _) = curl(&[&url("/one.bin")])?;
    same("GET /one.bin (1 MiB)", &body, &tree.one)?;
    let (body, _) = curl(&[&url("/big.bin")])?;
    let big: Vec<u8> = tree.one.repeat(100);
    same("GET /big.bin (100 MiB)", &body, &big)?;

    let (body, _) = curl(&[&url("/dir/")])?;
    let listing = String::from_utf8_lossy(&body);
    if !listing.contains("Index of /dir/")
        || !listing.contains("alpha.txt")
        || !listing.contains("beta.txt")
    {
        return Err(format!(
            "GET /dir/: not a listing of alpha.txt, beta.txt:\n{listing}"
        ));
    }

    let (code, _) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &url("/nope")])?;
    if code != b"404" {
        return Err(format!(
            "GET /nope: status {}",
            String::from_utf8_lossy(&code)
        ));
    }

    let (head, _) = curl(&["-i", "-r", "1000-1999", &url("/one.bin")])?;
    let split = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("range request: no header end")?;
    let (hdr, body) = (String::from_utf8_lossy(&head[..split]), &head[split + 4..]);
    if !hdr.starts_with("HTTP/1.1 206") || !hdr.contains("Content-Range: bytes 1000-1999/1048576") {
        return Err(format!("range request: headers\n{hdr}"));
    }
    same("range 1000-1999 of one.bin", body, &tree.one[1000..2000])?;

    // Two transfers in one curl: the second must reuse the connection.
    let (counts, err) = curl(&[
        "-v",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{num_connects} ",
        &url("/"),
        &url("/one.bin"),
    ])?;
    if counts != b"1 0 " || !err.contains("Re-using existing connection") {
        return Err(format!(
            "keep-alive: connects per transfer {:?}\n{err}",
            String::from_utf8_lossy(&counts)
        ));
    }
    curl(&["-o", "/dev/null", &url("/done")])?;
    Ok(())
}

/// `cargo xtask test net_lighttpd_serves_host`.
pub fn lighttpd_serves_host() -> Result<(), String> {
    crate::deps::ensure(&[&crate::deps::CURL])?;
    let tree = Tree::make()?;
    let host_port = crate::net_scenarios::free_port()?;
    let opts = RunOpts {
        exec: Some(GUEST_SCRIPT.to_string()),
        adds: tree.additions(),
        pkgs: vec!["lighttpd".into(), "perl-base".into()],
        net: true,
        forwards: vec![(host_port, 80)],
        ..Default::default()
    };
    let cfg = opts.config("net-lighttpd")?;
    let (tx, rx) = mpsc::channel();
    let host = std::thread::scope(|s| {
        let tree = &tree;
        let checks = s.spawn(move || -> Result<(), String> {
            rx.recv_timeout(Duration::from_secs(400))
                .map_err(|_| "the guest never printed SERVING".to_string())?;
            let r = host_checks(host_port, tree);
            if r.is_err() {
                // Let the guest finish either way.
                let _ = curl(&[
                    "-o",
                    "/dev/null",
                    &format!("http://127.0.0.1:{host_port}/done"),
                ]);
            }
            r
        });
        let out = qemu::run_captured_notify(
            &cfg,
            Duration::from_secs(600),
            false,
            Some(("SERVING".into(), tx)),
        );
        (out, checks.join())
    });
    let _ = std::fs::remove_dir_all(&tree.dir);
    let _ = std::fs::remove_file(&cfg.log);
    if let Some(i) = &cfg.initrd {
        let _ = std::fs::remove_file(i);
    }
    let (out, checks) = host;
    let out = out.map_err(|e| format!("qemu: {e}"))?;
    let fail = |what: &str| crate::scenarios::explain(&out, what);
    checks
        .map_err(|_| "host thread panicked")?
        .map_err(|e| fail(&e))?;
    let console = out.console_str();
    if out.guest_status() != Some(0) || !console.contains("LIGHTTPD STATUS 0") {
        return Err(fail("lighttpd did not exit cleanly on SIGTERM"));
    }
    // Debian's config has server.username/groupname www-data: lighttpd
    // binds port 80 as root, then drops to uid/gid 33 for good.
    for ids in [
        "LIGHTTPD Uid:\t33\t33\t33\t33",
        "LIGHTTPD Gid:\t33\t33\t33\t33",
    ] {
        if !console.contains(ids) {
            return Err(fail(&format!(
                "lighttpd did not drop to www-data ({ids:?})"
            )));
        }
    }
    match console
        .lines()
        .find_map(|l| l.strip_prefix("REQUESTS "))
        .and_then(|n| n.trim().parse::<u32>().ok())
    {
        Some(n) if n >= 9 => Ok(()),
        n => Err(fail(&format!("access log has {n:?} requests, want >= 9"))),
    }
}

const PYTHON_SCRIPT: &str = r#"
mkdir -p /srv/py/sub && cd /srv/py
cp /etc/rse/http/index.html /etc/rse/http/one.bin .
echo a > sub/alpha.txt
i=0
until grep -q '^eth0' /proc/net/route; do
  i=$((i+1)); [ $i -gt 600 ] && { echo NO LEASE; exit 3; }; sleep 0.1
done
python3 -u -m http.server 8000 --bind 0.0.0.0 > /tmp/py.log 2>&1 &
pid=$!
i=0
until grep -q 'Serving HTTP' /tmp/py.log 2>/dev/null; do
  i=$((i+1)); [ $i -gt 1200 ] && { echo NOT STARTED; cat /tmp/py.log; exit 5; }; sleep 0.1
done
echo SERVING
i=0
until grep -q 'GET /done' /tmp/py.log; do
  i=$((i+1)); [ $i -gt 3000 ] && { echo NO DONE; kill $pid; exit 4; }; sleep 0.1
done
kill -TERM $pid
wait $pid
echo "PYTHON STATUS $?"
"#;

/// Python's own web server (`python3 -m http.server`, Debian's python3)
/// serves the host: a page and 1 MiB byte for byte, a directory listing,
/// a 404; SIGTERM ends it (status 143: a background job of a
/// non-interactive shell ignores SIGINT, and so keeps python from ever
/// seeing a KeyboardInterrupt).
pub fn python_http_server() -> Result<(), String> {
    crate::deps::ensure(&[&crate::deps::CURL])?;
    let tree = Tree::make()?;
    let host_port = crate::net_scenarios::free_port()?;
    let opts = RunOpts {
        exec: Some(PYTHON_SCRIPT.to_string()),
        adds: tree.additions(),
        pkgs: vec!["python3".into()],
        net: true,
        forwards: vec![(host_port, 8000)],
        ..Default::default()
    };
    let cfg = opts.config("net-python")?;
    let (tx, rx) = mpsc::channel();
    let url = |p: &str| format!("http://127.0.0.1:{host_port}{p}");
    let (out, checks) = std::thread::scope(|s| {
        let tree = &tree;
        let checks = s.spawn(move || -> Result<(), String> {
            rx.recv_timeout(Duration::from_secs(400))
                .map_err(|_| "the guest never printed SERVING".to_string())?;
            let r = (|| {
                let (body, _) = curl(&[&url("/index.html")])?;
                if body != tree.index {
                    return Err("GET /index.html differs".to_string());
                }
                let (body, _) = curl(&[&url("/one.bin")])?;
                if body != tree.one {
                    return Err(format!(
                        "GET /one.bin: {} bytes, not the 1 MiB sent",
                        body.len()
                    ));
                }
                let (body, _) = curl(&[&url("/sub/")])?;
                let listing = String::from_utf8_lossy(&body);
                if !listing.contains("Directory listing for /sub/")
                    || !listing.contains("alpha.txt")
                {
                    return Err(format!("GET /sub/: not a listing:\n{listing}"));
                }
                let (code, _) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &url("/nope")])?;
                if code != b"404" {
                    return Err(format!("GET /nope: {}", String::from_utf8_lossy(&code)));
                }
                Ok(())
            })();
            let _ = curl(&["-o", "/dev/null", &url("/done")]);
            r
        });
        let out = qemu::run_captured_notify(
            &cfg,
            Duration::from_secs(600),
            false,
            Some(("SERVING".into(), tx)),
        );
        (out, checks.join())
    });
    let _ = std::fs::remove_dir_all(&tree.dir);
    let _ = std::fs::remove_file(&cfg.log);
    if let Some(i) = &cfg.initrd {
        let _ = std::fs::remove_file(i);
    }
    let out = out.map_err(|e| format!("qemu: {e}"))?;
    let fail = |what: &str| crate::scenarios::explain(&out, what);
    checks
        .map_err(|_| "host thread panicked")?
        .map_err(|e| fail(&e))?;
    if out.guest_status() != Some(0) || !out.console_str().contains("PYTHON STATUS 143") {
        return Err(fail("python's server did not die of SIGTERM"));
    }
    Ok(())
}
